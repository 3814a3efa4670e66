//! The sandbox helper of sandboxed test nodes (what `souk sandbox-helper` is for a real
//! node): `souk_node::testkit::sandbox_helper` finds this binary next to the test executables.

fn main() -> std::process::ExitCode {
    souk_runtime::sandbox::helper::main(std::env::args_os().skip(1))
}
