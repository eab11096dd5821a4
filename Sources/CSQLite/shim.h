// The system SQLite library (libsqlite3-dev on Debian), as the `CSQLite` module.
#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H

#include <sqlite3.h>

#endif
