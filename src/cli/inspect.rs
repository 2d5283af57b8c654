use super::Ctx;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// TABLE or TABLE.COLUMN; all tables when omitted
    pub target: Option<String>,
}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    Err(crate::error::Error::Usage("inspect: not built yet".into()))
}
