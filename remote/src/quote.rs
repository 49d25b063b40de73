//! Quoting for the remote shell. OpenSSH always hands the remote command to the user's
//! login shell as one string, so every argument is single-quoted: inside single quotes a
//! POSIX shell (sh, bash, dash, zsh, ksh) takes every byte literally except `'` itself,
//! which is closed, escaped and reopened (`'\''`). Nothing is ever interpolated.

/// One argument as the remote shell must see it, always quoted (even when it would not
/// need to be: one rule is easier to trust than a list of safe characters).
pub fn quote(arg: &str) -> String {
    let mut s = String::with_capacity(arg.len() + 2);
    s.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            s.push_str("'\\''");
        } else {
            s.push(c);
        }
    }
    s.push('\'');
    s
}

/// An argv as one remote command line, each word quoted.
pub fn command_line<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Refuses what a shell word cannot carry: a NUL byte ends a C string, so the remote side
/// would see a different argument than the one given.
pub fn check_arg(arg: &str) -> Result<(), crate::RemoteError> {
    if arg.contains('\0') {
        return Err(crate::RemoteError::Invalid(format!(
            "an argument contains a NUL byte: {arg:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The real test of quoting: a real shell parses the line back into the same words.
    fn through_sh(argv: &[&str]) -> Vec<String> {
        let line = format!("printf '%s\\0' {}", command_line(argv));
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success(), "{line}");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut v: Vec<String> = text.split('\0').map(String::from).collect();
        assert_eq!(v.pop().as_deref(), Some(""));
        v
    }

    #[test]
    fn every_word_comes_back_unchanged_through_a_real_shell() {
        let nasty = [
            "plain",
            "",
            "two words",
            "it's",
            "''",
            "$(touch /tmp/sunder-quote-pwned)",
            "`id`",
            "$HOME ${PATH} $1 $@",
            "a;b|c&d>e<f",
            "*",
            "~root",
            "back\\slash\\",
            "new\nline\ttab",
            "\"double\"",
            "-n",
            "ünïcødé",
            "!event",
        ];
        assert_eq!(through_sh(&nasty), nasty);
        assert!(!std::path::Path::new("/tmp/sunder-quote-pwned").exists());
    }

    #[test]
    fn quotes_are_closed_escaped_and_reopened() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(command_line(&["ls", "-l", ""]), "'ls' '-l' ''");
        assert!(check_arg("a\0b").is_err());
        assert!(check_arg("fine").is_ok());
    }
}
