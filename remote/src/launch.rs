//! [`Launch`]: a process to start detached on a host (argv, environment, working directory,
//! log file, pid file), checked before anything is sent.

use crate::layout::{RUN_ENV, RunLayout, check_name};
use crate::{RemoteError, check_remote_path};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// For pid and log file names (a node id, `clock-n1`, ...).
    pub name: String,
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: String,
    /// stdout and stderr, appended.
    pub log: String,
    pub pid_file: String,
}

impl Launch {
    /// A process of the run: working directory `<run dir>/<name>`, log `<run dir>/<name>.log`,
    /// pid file `<run dir>/pids/<name>.pid`.
    pub fn in_run(layout: &RunLayout, name: &str, argv: Vec<String>) -> Launch {
        Launch {
            name: name.to_string(),
            argv,
            env: Vec::new(),
            cwd: layout.work_dir(name),
            log: layout.log_file(name),
            pid_file: layout.pid_file(name),
        }
    }

    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// `env` would read a program called `a=b` as a variable and `-x` as its option, and a
    /// variable name outside `[A-Za-z_][A-Za-z0-9_]*` is not one.
    pub fn validate(&self) -> Result<(), RemoteError> {
        check_name(&self.name)?;
        let Some(prog) = self.argv.first() else {
            return Err(RemoteError::Invalid(format!("{}: empty argv", self.name)));
        };
        if prog.is_empty() || prog.contains('=') || prog.starts_with('-') {
            return Err(RemoteError::Invalid(format!(
                "{}: program {prog:?} (empty, holds '=' or starts with '-')",
                self.name
            )));
        }
        for (k, _) in &self.env {
            let mut cs = k.chars();
            let ok = cs
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && cs.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || k == RUN_ENV {
                return Err(RemoteError::Invalid(format!(
                    "{}: bad environment name {k:?}",
                    self.name
                )));
            }
        }
        for p in [&self.cwd, &self.log, &self.pid_file] {
            check_remote_path(p)?;
        }
        Ok(())
    }

    /// The start script's arguments: cwd, log, pid file, then `env`'s: the run's mark,
    /// the variables and the argv.
    pub(crate) fn script_args(&self, layout: &RunLayout) -> Vec<String> {
        let mut v = vec![self.cwd.clone(), self.log.clone(), self.pid_file.clone()];
        v.push(format!("{RUN_ENV}={}", layout.run()));
        v.extend(self.env.iter().map(|(k, val)| format!("{k}={val}")));
        v.extend(self.argv.iter().cloned());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RunId;

    #[test]
    fn what_env_would_misread_is_refused() {
        let l = RunLayout::new("/tmp/x", RunId::new("r").unwrap()).unwrap();
        let ok = Launch::in_run(&l, "n1", vec!["/bin/sleep".into(), "9".into()]).env("A_1", "x=y");
        assert!(ok.validate().is_ok());
        assert_eq!(
            ok.script_args(&l),
            [
                "/tmp/x/r/n1",
                "/tmp/x/r/n1.log",
                "/tmp/x/r/pids/n1.pid",
                "SUNDER_RUN_ID=r",
                "A_1=x=y",
                "/bin/sleep",
                "9"
            ]
        );
        for argv in [vec![], vec!["a=b".to_string()], vec!["-i".to_string()]] {
            let mut b = ok.clone();
            b.argv = argv;
            assert!(b.validate().is_err());
        }
        for k in ["1A", "A-B", "", "SUNDER_RUN_ID"] {
            assert!(ok.clone().env(k, "v").validate().is_err(), "{k:?}");
        }
        let mut rel = ok.clone();
        rel.cwd = "data".into();
        assert!(rel.validate().is_err());
    }
}
