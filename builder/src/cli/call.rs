//! `pallet build --call targets|outline[,format=json]`: what `docker buildx build --call`
//! prints instead of building (BuildKit's `frontend.targets` and `frontend.outline`
//! subrequests: `frontend::outline`), on standard output. Nothing is built, pulled or
//! stored. `--call build` (the default) builds; `check` is not built yet.

use super::error::CliError;
use super::input::Loaded;
use frontend::outline::{outline, print_outline, print_targets, targets};
use serde::Serialize;

/// What `--call` asks for, when it is not a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Targets { json: bool },
    Outline { json: bool },
}

impl Call {
    /// `--call VALUE`: None for a build.
    pub fn parse(value: &str) -> Result<Option<Call>, CliError> {
        let mut fields = value.split(',');
        let method = fields.next().unwrap_or("").trim();
        let mut json = false;
        for field in fields {
            match field.trim() {
                "format=json" => json = true,
                "format=text" | "" => {}
                other => {
                    return Err(CliError::msg(format!(
                        "invalid --call \"{value}\": unknown option \"{other}\""
                    ))
                    .with_help("--call METHOD[,format=json|text]"))
                }
            }
        }
        match method {
            "build" if !json => Ok(None),
            "targets" => Ok(Some(Call::Targets { json })),
            "outline" => Ok(Some(Call::Outline { json })),
            "check" => Err(CliError::msg(
                "--call check is not built yet: pallet build prints the same lint warnings \
                 (BuildKit's rules) while it builds",
            )
            .with_help("run the build; `# check=error=true` in the Dockerfile makes them fail it")),
            other => Err(CliError::msg(format!(
                "invalid --call \"{other}\": pallet knows build, targets and outline"
            ))
            .with_help("--call targets lists the stages; --call outline the build args, secrets and ssh agents a target needs")),
        }
    }

    /// Prints the answer for `loaded` (its target and build args) on standard output.
    pub fn run(self, loaded: &Loaded) -> Result<(), CliError> {
        let text = match self {
            Call::Targets { json } => {
                let list = targets(&loaded.parsed).map_err(|e| loaded.error(e))?;
                if json {
                    json_with_sources(&list, &loaded.text)
                } else {
                    print_targets(&list)
                }
            }
            Call::Outline { json } => {
                let o = outline(
                    &loaded.parsed,
                    loaded.options.target.as_deref(),
                    &loaded.options.build_args,
                )
                .map_err(|e| loaded.error(e))?;
                if json {
                    json_with_sources(&o, &loaded.text)
                } else {
                    print_outline(&o)
                }
            }
        };
        print!("{text}");
        Ok(())
    }
}

/// `value` as BuildKit's result.json: its fields, then `sources` (the Dockerfile, base64 as
/// Go writes a `[]byte`), indented by two spaces.
fn json_with_sources(value: &impl Serialize, dockerfile: &str) -> String {
    let mut v = serde_json::to_value(value).expect("the outline serializes");
    if let Some(map) = v.as_object_mut() {
        map.insert(
            "sources".into(),
            serde_json::json!([registry::base64_encode(dockerfile.as_bytes())]),
        );
    }
    let mut text = serde_json::to_string_pretty(&v).expect("JSON serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_values() {
        assert_eq!(Call::parse("build").unwrap(), None);
        assert_eq!(
            Call::parse("targets").unwrap(),
            Some(Call::Targets { json: false })
        );
        assert_eq!(
            Call::parse("outline,format=json").unwrap(),
            Some(Call::Outline { json: true })
        );
        assert!(Call::parse("check")
            .unwrap_err()
            .to_string()
            .contains("not built yet"));
        assert!(Call::parse("lint")
            .unwrap_err()
            .to_string()
            .contains("invalid --call \"lint\""));
        assert!(Call::parse("targets,format=yaml")
            .unwrap_err()
            .to_string()
            .contains("unknown option \"format=yaml\""));
    }
}
