/* What a CUDA program does first: load libcuda.so.1 through the dynamic loader
 * (its ld cache) and count the devices. */
#include <dlfcn.h>
#include <stdio.h>

int main(void) {
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (!h) {
        printf("dlopen: %s\n", dlerror());
        return 1;
    }
    int (*init)(unsigned) = (int (*)(unsigned))dlsym(h, "cuInit");
    int (*count)(int *) = (int (*)(int *))dlsym(h, "cuDeviceGetCount");
    int n = -1;
    if (!init || !count || init(0) != 0 || count(&n) != 0) {
        printf("libcuda.so.1 lacks the driver API\n");
        return 1;
    }
    printf("cuda devices: %d\n", n);
    return 0;
}
