//! The server's suites (the `shiplog` binary's commands, faults, migrations, `notify`), one
//! module each, in one test binary; what they share is `common`.

mod admin_cli;
mod backup;
mod common;
mod faults;
mod import;
mod migrate;
mod notify;
mod packing;
mod retention;
mod tls;
