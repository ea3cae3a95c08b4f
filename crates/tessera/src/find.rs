//! `tessera find`: query the index.

use clap::{Args, ValueEnum};
use tessera_proto::v1::{QueryLevel, QueryRequest, QueryResponse};

use crate::client::ClusterAddr;

#[derive(Clone, Copy, ValueEnum)]
pub enum LevelArg {
    Patient,
    Study,
    Series,
    Instance,
}

impl From<LevelArg> for QueryLevel {
    fn from(level: LevelArg) -> Self {
        match level {
            LevelArg::Patient => QueryLevel::Patient,
            LevelArg::Study => QueryLevel::Study,
            LevelArg::Series => QueryLevel::Series,
            LevelArg::Instance => QueryLevel::Instance,
        }
    }
}

#[derive(Args)]
pub struct FindArgs {
    #[arg(long, value_enum, default_value = "study")]
    level: LevelArg,
    /// Match keys as KEYWORD=VALUE, e.g. PatientName='DOE^*' or
    /// StudyDate=20240101-20240331. Repeatable.
    #[arg(long = "key", short = 'k', value_parser = parse_key)]
    keys: Vec<(String, String)>,
    #[arg(long, default_value_t = 100)]
    limit: u32,
    #[arg(long, default_value_t = 0)]
    offset: u32,
    /// Query the contacted node without the read barrier; results may lag.
    #[arg(long)]
    stale: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    cluster: ClusterAddr,
}

fn parse_key(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!(
            "{text:?} is not KEYWORD=VALUE, e.g. PatientID=12345"
        )),
    }
}

pub async fn run(args: FindArgs) -> anyhow::Result<std::process::ExitCode> {
    let request = QueryRequest {
        header: None,
        level: QueryLevel::from(args.level) as i32,
        keys: args.keys.into_iter().collect(),
        limit: args.limit,
        offset: args.offset,
        allow_stale: args.stale,
    };
    let response = args
        .cluster
        .archive()
        .await?
        .query(request)
        .await?
        .into_inner();
    if args.json {
        print_json(&response)?;
    } else {
        print_table(&response);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn print_json(response: &QueryResponse) -> anyhow::Result<()> {
    let records: Vec<_> = response.records.iter().map(|r| &r.attributes).collect();
    let value = serde_json::json!({ "total": response.total, "records": records });
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}

fn print_table(response: &QueryResponse) {
    let Some(first) = response.records.first() else {
        println!("no matches");
        return;
    };
    let mut columns: Vec<&String> = first.attributes.keys().collect();
    columns.sort();
    let widths: Vec<usize> = columns
        .iter()
        .map(|c| {
            let longest = response
                .records
                .iter()
                .map(|r| r.attributes.get(*c).map(|v| v.chars().count()).unwrap_or(0))
                .max()
                .unwrap_or(0);
            longest.max(c.len()).min(64)
        })
        .collect();

    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{:width$}", truncate(cell, *width), width = *width))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(columns.iter().map(|c| c.as_str()).collect());
    for record in &response.records {
        line(
            columns
                .iter()
                .map(|c| record.attributes.get(*c).map(String::as_str).unwrap_or(""))
                .collect(),
        );
    }
    println!("{} of {} matches", response.records.len(), response.total);
}

fn truncate(text: &str, width: usize) -> String {
    text.chars().take(width).collect()
}
