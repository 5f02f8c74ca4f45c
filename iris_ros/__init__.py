"""iris_ros: the ROS 2 side of Iris depth: a node that turns camera images plus a scene description into
REP 118 depth images and point clouds.

ROS-free helpers (importable and tested without rclpy):
- :mod:`iris_ros.image_codec`: ``sensor_msgs/Image`` / ``CompressedImage`` fields <-> numpy;
- :mod:`iris_ros.cloud_packing`: organized XYZ / XYZRGB point clouds -> ``PointCloud2`` bytes and fields;
- :mod:`iris_ros.camera_info`: ``CameraInfo`` K/P -> :class:`iris_model.geometry.Intrinsics`, rescaling;
- :mod:`iris_ros.config`: the node's parameters (names, defaults, ranges) as one validated dataclass;
- :mod:`iris_ros.camera_pose`: camera poses (``PoseStamped`` fields -> 4x4) and their history by stamp;
- :mod:`iris_ros.frame_slot`: the newest-frame slot between ROS callbacks and the worker thread.

The node itself is :mod:`iris_ros.depth_node` (executable ``depth_node``); :mod:`iris_ros.demo_camera`
publishes a synthetic camera for trying it without hardware.
"""

__version__ = "0.1.0"
