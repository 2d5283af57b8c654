use std::process::ExitCode;

fn main() -> ExitCode {
    let code = keel::cli::main();
    ExitCode::from(code)
}
