//! `berth list`: every container under --root, as runc's table or JSON.

use std::os::unix::fs::MetadataExt;

use crate::cli::{ListArgs, ListFormat};
use crate::error::Error;
use crate::state::Store;

pub fn run(store: &Store, args: &ListArgs) -> Result<i32, Error> {
    let mut rows = Vec::new();
    for id in store.ids()? {
        let Ok(dir) = store.open(&id) else { continue };
        let Ok(Some(rec)) = dir.read() else { continue };
        let status = dir.status(&rec);
        let owner = std::fs::metadata(&dir.path)
            .ok()
            .and_then(|m| nix::unistd::User::from_uid(m.uid().into()).ok().flatten())
            .map(|u| u.name)
            .unwrap_or_default();
        rows.push((rec, status, owner));
    }
    if args.quiet {
        for (rec, _, _) in &rows {
            println!("{}", rec.id);
        }
        return Ok(0);
    }
    match args.format {
        ListFormat::Json => {
            let states: Vec<_> = rows
                .iter()
                .map(|(rec, status, owner)| {
                    let mut v = serde_json::to_value(rec.oci(*status)).unwrap_or_default();
                    v["owner"] = serde_json::Value::String(owner.clone());
                    v
                })
                .collect();
            println!("{}", serde_json::Value::Array(states));
        }
        ListFormat::Table => {
            let mut table = vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                .map(String::from)
                .to_vec()];
            for (rec, status, owner) in &rows {
                let pid = if *status == crate::state::Status::Stopped {
                    0
                } else {
                    rec.pid
                };
                table.push(vec![
                    rec.id.clone(),
                    pid.to_string(),
                    status.to_string(),
                    rec.bundle.display().to_string(),
                    rec.created.clone(),
                    owner.clone(),
                ]);
            }
            print!("{}", format_table(&table));
        }
    }
    Ok(0)
}

/// Columns padded as runc's tabwriter does: width = max(12, longest cell + 3).
fn format_table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map_or(0, |r| r.len());
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len() + 3)
                .max()
                .unwrap_or(0)
                .max(12)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == cols {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<w$}", w = widths[c]));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_like_runc() {
        let rows = vec![
            vec!["ID".to_string(), "PID".into(), "OWNER".into()],
            vec!["t1".to_string(), "3654".into(), "root".into()],
        ];
        assert_eq!(
            format_table(&rows),
            "ID          PID         OWNER\nt1          3654        root\n"
        );
    }
}
