/* A stand-in for the driver's libcuda: the CUDA driver API calls a program needs
 * to count GPUs, answering from the /dev/nvidiaN nodes it can see. */
#include <dirent.h>
#include <string.h>

int cuInit(unsigned int flags) { (void)flags; return 0; }

int cuDriverGetVersion(int *version) { *version = CUDA_VERSION_INT; return 0; }

int cuDeviceGetCount(int *count) {
    DIR *d = opendir("/dev");
    struct dirent *e;
    *count = 0;
    if (!d) return 0;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strncmp(n, "nvidia", 6) == 0 && n[6] >= '0' && n[6] <= '9' &&
            strspn(n + 6, "0123456789") == strlen(n + 6))
            (*count)++;
    }
    closedir(d);
    return 0;
}
