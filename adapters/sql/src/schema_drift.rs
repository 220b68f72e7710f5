//! The two schema files must describe one schema: the same tables, the same columns in the
//! same order (the rows in `rows.rs` are positional and serve both backends), the same
//! nullability, the same SQL names and joins, with types that differ only where the backends
//! spell one type two ways. Two columns swapped in one file would compile and swap data on
//! one backend; this test fails instead.

/// One meaningful line of a schema file, with PostgreSQL type names spelled as SQLite's.
fn items(text: &str) -> Vec<String> {
    const SAME: &[(&str, &str)] = &[
        ("Uuid", "Text"),
        ("Varchar", "Text"),
        ("Timestamptz", "TimestamptzSqlite"),
        ("Jsonb", "Json"),
    ];
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty()
                && !l.starts_with("//")
                && !l.starts_with("use ")
                && *l != "}"
                && *l != "diesel::table! {"
        })
        .map(|l| match l.split_once(" -> ") {
            Some((column, ty)) if l.ends_with(',') && !l.starts_with("diesel::") => {
                let ty = ty.trim_end_matches(',');
                let (nullable, inner) = match ty.strip_prefix("Nullable<") {
                    Some(rest) => (true, rest.trim_end_matches('>')),
                    None => (false, ty),
                };
                let inner = SAME
                    .iter()
                    .find(|(pg, _)| *pg == inner)
                    .map_or(inner, |(_, lite)| lite);
                format!(
                    "{column} -> {}",
                    if nullable {
                        format!("Nullable<{inner}>")
                    } else {
                        inner.to_owned()
                    }
                )
            }
            _ => l.to_owned(),
        })
        .collect()
}

#[test]
fn both_schema_files_describe_one_schema() {
    let pg = items(include_str!("schema_pg.rs"));
    let lite = items(include_str!("schema_sqlite.rs"));
    assert!(
        pg.len() > 300,
        "the PostgreSQL schema was read ({} lines)",
        pg.len()
    );
    for (i, (a, b)) in pg.iter().zip(&lite).enumerate() {
        assert_eq!(a, b, "schema_pg.rs and schema_sqlite.rs part at item {i}");
    }
    assert_eq!(
        pg.len(),
        lite.len(),
        "the same number of tables, columns and joins"
    );
}

#[test]
fn a_swapped_column_is_caught() {
    let pg = include_str!("schema_pg.rs");
    let swapped = pg.replacen(
        "admin_user_id -> Nullable<Uuid>,\n        admin_identity_type -> Varchar,",
        "admin_identity_type -> Varchar,\n        admin_user_id -> Nullable<Uuid>,",
        1,
    );
    assert_ne!(swapped, pg, "the swap applies to the schema text");
    assert_ne!(items(&swapped), items(include_str!("schema_sqlite.rs")));
}
