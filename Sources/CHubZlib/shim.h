// zlib: CHARX character cards are zip files whose entries are usually deflated.
#include <zlib.h>
