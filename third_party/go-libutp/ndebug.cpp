// Compiled with the package's cgo flags, like libutp's own files: it
// reports whether their asserts are compiled in.
#include <assert.h>

extern "C" int utp_asserts_enabled(void)
{
#ifdef NDEBUG
	return 0;
#else
	return 1;
#endif
}
