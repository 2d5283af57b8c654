use super::Global;
use crate::error::Result;

pub async fn run(_global: Global) -> Result<()> {
    Err(crate::error::Error::Usage("demo: not built yet".into()))
}
