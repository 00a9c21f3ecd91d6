// zstd: backup blobs are compressed in groups of records, not one by one.
#include <zstd.h>
