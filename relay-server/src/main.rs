//! `securechat-relay`: the SecureChat relay server binary.

use clap::Parser;
use relay_server::Config;
use relay_server::config::Command;
use tracing_subscriber::EnvFilter;

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            EnvFilter::try_from_env("SECURECHAT_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = Config::parse();
    if let Some(Command::Backup { file }) = &config.command {
        let wait = std::time::Duration::from_secs(config.db_wait_secs);
        let bytes = relay_server::backup::sqlite_snapshot(&config.database_url, file, wait)?;
        println!(
            "SecureChat backup written to {} ({bytes} bytes)",
            file.display()
        );
        return Ok(());
    }
    relay_server::run(config).await?;
    Ok(())
}
