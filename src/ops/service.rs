//! `tuanbot service install`: a systemd unit that runs `tuanbot run` as
//! an unprivileged user, in its working directory, with its settings file,
//! restarted on failure. The unit is written; enabling it is left to the
//! operator (the command prints how), so nothing changes on the machine
//! behind their back.

use std::path::{Path, PathBuf};

/// What goes into the unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// The `tuanbot` binary (absolute).
    pub binary: PathBuf,
    /// The settings file passed as `--config` (absolute).
    pub config: PathBuf,
    /// The working directory: where a relative `sqlite://` file lives.
    pub dir: PathBuf,
    /// The user (and group) the bot runs as.
    pub user: String,
    /// Where scheduled backups go, if set: writable for the service.
    pub backup_dir: Option<PathBuf>,
}

impl Unit {
    /// The unit file's text.
    pub fn render(&self) -> String {
        let mut writable = vec![self.dir.display().to_string()];
        if let Some(b) = &self.backup_dir {
            writable.push(b.display().to_string());
        }
        format!(
            "# Written by `tuanbot service install`.\n\
             [Unit]\n\
             Description=tuanbot 团务助手 (group-chat assistant)\n\
             After=network-online.target postgresql.service\n\
             Wants=network-online.target\n\
             \n\
             [Service]\n\
             Type=simple\n\
             User={user}\n\
             Group={user}\n\
             WorkingDirectory={dir}\n\
             ExecStart={binary} --config {config} run\n\
             Restart=on-failure\n\
             RestartSec=5\n\
             TimeoutStopSec=30\n\
             Environment=TUANBOT_LOG=info\n\
             NoNewPrivileges=yes\n\
             PrivateTmp=yes\n\
             ProtectSystem=strict\n\
             ProtectHome=yes\n\
             ReadWritePaths={writable}\n\
             \n\
             [Install]\n\
             WantedBy=multi-user.target\n",
            user = self.user,
            dir = self.dir.display(),
            binary = self.binary.display(),
            config = self.config.display(),
            writable = writable.join(" "),
        )
    }
}

/// `path` made absolute against the current directory.
pub fn absolute(path: &Path) -> std::io::Result<PathBuf> {
    std::path::absolute(path)
}

/// Write the unit to `dir/tuanbot.service`; refuses to overwrite one
/// unless `force`. Returns the file written.
pub fn install(unit: &Unit, dir: &Path, force: bool) -> std::io::Result<PathBuf> {
    let path = dir.join("tuanbot.service");
    if path.exists() && !force {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} exists (--force replaces it)", path.display()),
        ));
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(&path, unit.render())?;
    Ok(path)
}
