//! `tapio-collector`: see `tapio-collector --help`.

use std::process::ExitCode;

use tapio_host::cli::{self, Command, DocsCommand, PluginsCommand};
use tapio_host::{app, commands, config::LoadedConfig, docs};

/// mimalloc: the pipeline thread allocates and frees attribute strings for every event
/// (enrichment, correlation, sinks); glibc malloc was about a sixth of the correlation
/// stage's time (`cargo bench -p tapio-collector --bench correlation`: 1347 -> 976 ns per
/// event). Plugins keep their own allocator: events cross the ABI borrowed and are copied.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tapio_host::allocator::configure();
    let (cli, matches) = cli::parse();
    let result = match cli.command {
        None => app::run(cli.run, matches),
        Some(Command::Run(args)) => {
            let sub = matches
                .subcommand_matches("run")
                .cloned()
                .unwrap_or_default();
            app::run(args, sub)
        }
        Some(Command::Plugins(PluginsCommand::List {
            plugins_dir,
            config,
        })) => {
            let config = match config.as_deref().map(LoadedConfig::load).transpose() {
                Ok(c) => c,
                Err(e) => return fail(&e.to_string()),
            };
            let dir = app::plugins_dir_for(plugins_dir, config.as_ref());
            match commands::list(&dir, config.as_ref()) {
                Ok((text, all_ok)) => {
                    print!("{text}");
                    return if all_ok {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    };
                }
                Err(e) => Err(e),
            }
        }
        Some(Command::Plugins(PluginsCommand::Inspect { file })) => {
            commands::inspect(&file).map(|text| print!("{text}"))
        }
        Some(Command::Receive(args)) => {
            app::init_logging("info", cli::LogFormat::Text);
            tapio_host::export::receive::run(args)
        }
        Some(Command::Docs(DocsCommand::Config { plugins_dir })) => {
            docs::config_reference(&plugins_dir).map(|text| print!("{text}"))
        }
        Some(Command::Docs(DocsCommand::Metrics)) => {
            print!("{}", docs::metrics_reference());
            Ok(())
        }
        Some(Command::CheckConfig { file, plugins_dir }) => {
            match commands::check_config(&file, plugins_dir) {
                Ok(report) => {
                    print!("{report}");
                    Ok(())
                }
                Err(message) => return fail(&message),
            }
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("{e:#}")),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("tapio-collector: {message}");
    ExitCode::from(1)
}
