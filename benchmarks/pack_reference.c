/* A compiled reference for benchmarks/node.py: the XYZRGB interleave pack_xyzrgb does, as one plain C loop
 * (built with the system compiler at -O3 when one is present). It shows how close the packing (OpenCV's
 * interleaving stores) comes to a plain compiled loop on the machine at hand; it is not used by the node. */
#include <stdint.h>
#include <string.h>

void pack_xyzrgb(const float *xyz, const uint8_t *rgb, float *out, long n) {
    for (long i = 0; i < n; i++) {
        out[4 * i] = xyz[3 * i];
        out[4 * i + 1] = xyz[3 * i + 1];
        out[4 * i + 2] = xyz[3 * i + 2];
        uint32_t c = ((uint32_t)rgb[3 * i] << 16) | ((uint32_t)rgb[3 * i + 1] << 8) | rgb[3 * i + 2];
        memcpy(&out[4 * i + 3], &c, 4); /* 0x00RRGGBB in host order, as the rgb field */
    }
}
