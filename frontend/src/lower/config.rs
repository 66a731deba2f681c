//! The instructions that change the image config and nothing else: ENV, LABEL, MAINTAINER,
//! CMD, ENTRYPOINT, HEALTHCHECK, EXPOSE, USER, VOLUME, STOPSIGNAL and SHELL, each with its
//! lint checks and the history line BuildKit writes for it (`dispatchEnv`, `dispatchCmd`,
//! ...). ENV also sets the stage's variables.
//!
//! None of them adds to the graph: they know the stage's state, not its tree.

use super::env::Expander;
use super::ports::parse_port_spec;
use super::Lowering;
use crate::ast::Span;
use crate::diagnostic::FrontendError;
use crate::duration;
use crate::instructions::{Healthcheck, KeyValue, ShellForm};
use crate::parser::go_quote;
use graph::image::{Empty, HealthConfig, Image};

impl Lowering<'_> {
    pub(super) fn dispatch_env(
        &mut self,
        i: usize,
        kvs: &[KeyValue],
        span: Span,
    ) -> Result<(), FrontendError> {
        let mut msg = String::from("ENV");
        for kv in kvs {
            if kv.legacy {
                self.linter.run(
                    "LegacyKeyValueFormat",
                    "\"ENV key=value\" should be used instead of legacy \"ENV key value\" format"
                        .into(),
                    Some(span),
                );
            }
            self.lint_secret_name("ENV", &kv.key, span);
            msg.push_str(&format!(" {}={}", kv.key, kv.value));
            let st = &mut self.states[i];
            st.env
                .set(&kv.key, &kv.value)
                .map_err(|e| FrontendError::from_cause(e, span))?;
            st.image.config.env_set(&kv.key, &kv.value);
        }
        self.history(i, msg, false);
        Ok(())
    }

    pub(super) fn dispatch_label(&mut self, i: usize, kvs: &[KeyValue], span: Span) {
        let mut msg = String::from("LABEL");
        for kv in kvs {
            if kv.legacy {
                self.linter.run("LegacyKeyValueFormat", "\"LABEL key=value\" should be used instead of legacy \"LABEL key value\" format".into(), Some(span));
            }
            self.states[i]
                .image
                .config
                .labels
                .insert(kv.key.clone(), kv.value.clone());
            msg.push_str(&format!(" {}={}", kv.key, kv.value));
        }
        self.history(i, msg, false);
    }

    pub(super) fn dispatch_maintainer(&mut self, i: usize, maintainer: String) {
        self.history(i, format!("MAINTAINER {maintainer}"), false);
        self.states[i].image.author = Some(maintainer);
    }

    /// CMD (`name` "CMD") or ENTRYPOINT: the shell form gets the stage's shell; an
    /// ENTRYPOINT resets a CMD that an earlier stage or the base image set.
    pub(super) fn dispatch_cmd(
        &mut self,
        i: usize,
        name: &'static str,
        form: ShellForm,
        span: Span,
    ) {
        let is_cmd = name == "CMD";
        self.once(i, name, span);
        let mut args = form.args;
        if form.prepend_shell {
            if self.states[i].image.config.shell.is_empty() {
                self.linter.run("JSONArgsRecommended", format!("JSON arguments recommended for {name} to prevent unintended behavior related to OS signals"), Some(span));
            }
            args = with_shell(&self.states[i].image, &args);
        }
        let st = &mut self.states[i];
        let shown = go_quote_list(&args);
        if is_cmd {
            st.image.config.cmd = Some(args);
            st.image.config.args_escaped = true;
            st.cmd_set = true;
        } else {
            st.image.config.entrypoint = (!args.is_empty() || form.prepend_shell).then_some(args);
            if !st.cmd_set {
                st.image.config.cmd = None;
            }
        }
        self.history(i, format!("{name} {shown}"), false);
    }

    pub(super) fn dispatch_healthcheck(&mut self, i: usize, h: Healthcheck, span: Span) {
        self.once(i, "HEALTHCHECK", span);
        let shown = format!(
            "HEALTHCHECK {{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
            h.test.join(" "),
            duration::format(h.interval),
            duration::format(h.timeout),
            duration::format(h.start_period),
            duration::format(h.start_interval),
            h.retries
        );
        self.states[i].image.config.healthcheck = Some(HealthConfig {
            test: h.test,
            interval: h.interval,
            timeout: h.timeout,
            start_period: h.start_period,
            start_interval: h.start_interval,
            retries: h.retries,
        });
        self.history(i, shown, false);
    }

    /// EXPOSE: the words sorted as written (BuildKit's parseExpose sorts them before
    /// expansion, which orders the history's list), each expanded and split into fields, then
    /// read as a port spec.
    pub(super) fn dispatch_expose(
        &mut self,
        i: usize,
        ports: &[String],
        span: Span,
    ) -> Result<(), FrontendError> {
        let env = self.states[i].env.clone();
        let mut ex = Expander::new(&self.lexer, &env);
        let mut sorted = ports.to_vec();
        sorted.sort();
        let mut words = Vec::new();
        for p in &sorted {
            words.extend(
                ex.words(p)
                    .map_err(|e| FrontendError::from_cause(e, span))?,
            );
        }
        let mut specs = Vec::new();
        for w in &words {
            if w.contains(':') {
                self.linter.run("ExposeInvalidFormat", format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{w}'"), Some(span));
            }
            if let Some((_, proto)) = w.split_once('/') {
                if proto != proto.to_lowercase() {
                    self.linter.run(
                        "ExposeProtoCasing",
                        // BuildKit names the whole port spec (`'80/TcP'`), not the protocol.
                        format!("Defined protocol '{w}' in EXPOSE instruction should be lowercase"),
                        Some(span),
                    );
                }
            }
            specs.extend(
                parse_port_spec(w)
                    .map_err(|e| FrontendError::from_cause(e, span).with_needle(w.clone()))?,
            );
        }
        for s in &specs {
            self.states[i]
                .image
                .config
                .exposed_ports
                .insert(s.clone(), Empty {});
        }
        self.history(i, format!("EXPOSE [{}]", specs.join(" ")), false);
        Ok(())
    }

    pub(super) fn dispatch_user(&mut self, i: usize, user: String) {
        let st = &mut self.states[i];
        st.user = user.clone();
        st.image.config.user = user.clone();
        self.history(i, format!("USER {user}"), false);
    }

    pub(super) fn dispatch_volume(
        &mut self,
        i: usize,
        vols: &[String],
        span: Span,
    ) -> Result<(), FrontendError> {
        for v in vols {
            if v.is_empty() {
                return Err(FrontendError::new(
                    "VOLUME specified can not be an empty string",
                    span,
                ));
            }
            self.states[i]
                .image
                .config
                .volumes
                .insert(v.clone(), Empty {});
        }
        self.history(i, format!("VOLUME [{}]", vols.join(" ")), false);
        Ok(())
    }

    pub(super) fn dispatch_stopsignal(
        &mut self,
        i: usize,
        sig: String,
        span: Span,
    ) -> Result<(), FrontendError> {
        check_signal(&sig)
            .map_err(|e| FrontendError::from_cause(e, span).with_needle(sig.clone()))?;
        self.states[i].image.config.stop_signal = sig.clone();
        self.history(i, format!("STOPSIGNAL {sig}"), false);
        Ok(())
    }

    pub(super) fn dispatch_shell(&mut self, i: usize, shell: Vec<String>) {
        let shown = format!("SHELL [{}]", shell.join(" "));
        self.states[i].image.config.shell = shell;
        self.history(i, shown, false);
    }
}

/// The stage's shell (SHELL, default `/bin/sh -c`) followed by the command line as one word.
pub(super) fn with_shell(image: &Image, args: &[String]) -> Vec<String> {
    let mut out = if image.config.shell.is_empty() {
        vec!["/bin/sh".to_string(), "-c".to_string()]
    } else {
        image.config.shell.clone()
    };
    out.push(args.join(" "));
    out
}

/// Go's `%q` of a `[]string`: `["/bin/sh" "-c" "echo hi"]`.
fn go_quote_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

/// A STOPSIGNAL moby's `signal.ParseSignal` refuses, as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Invalid signal: {0}")]
pub struct InvalidSignal(pub String);

/// moby's `signal.ParseSignal`: a number, or a known name with or without `SIG`.
fn check_signal(sig: &str) -> Result<(), InvalidSignal> {
    let invalid = || InvalidSignal(sig.to_string());
    if let Ok(n) = sig.parse::<i64>() {
        return if n > 0 { Ok(()) } else { Err(invalid()) };
    }
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
        "UNUSED",
    ];
    let upper = sig.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"));
    let rt_ok =
        rt.is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u8>().is_ok());
    if NAMES.contains(&name) || rt_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        for ok in ["SIGTERM", "term", "9", "SIGRTMIN+3", "USR1"] {
            assert!(check_signal(ok).is_ok(), "{ok}");
        }
        for bad in ["SIGFOO", "0", "-1", ""] {
            assert!(check_signal(bad).is_err(), "{bad}");
        }
    }
}
