use super::Ctx;
use crate::error::Result;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1000)]
    pub users: u64,
    #[arg(long, default_value_t = 5000)]
    pub posts: u64,
    #[arg(long, default_value_t = 15000)]
    pub comments: u64,
    /// Multiplies all three counts
    #[arg(long, default_value_t = 1)]
    pub scale: u64,
}

pub async fn run(_ctx: &Ctx, _args: Args) -> Result<()> {
    Err(crate::error::Error::Usage("seed: not built yet".into()))
}
