//! A runbook rendered again over one that runs already wrote into.

/// The new rendering with what runs wrote into the old one kept: the
/// execution-record sections (the records bind them), and, when the
/// migration is the one those runs followed (same `checksum`), the ticked
/// checklist items.
pub(crate) fn keep_history(old: &str, rendered: String, checksum: &str) -> String {
    let sections = super::binding::sections(old);
    let same = super::marker(old).is_some_and(|m| m.checksum == checksum);
    let ticked: Vec<String> = if same {
        super::annotate::checklist(old)
            .into_iter()
            .filter(|i| i.checked)
            .filter_map(|i| i.id)
            .collect()
    } else {
        Vec::new()
    };
    if sections.is_empty() && ticked.is_empty() {
        return rendered;
    }
    let ticks: Vec<&str> = ticked.iter().map(String::as_str).collect();
    if sections.is_empty() {
        return super::annotate::tick(&rendered, &ticks);
    }
    super::annotate::annotate(&rendered, &ticks, &sections.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runbook_no_run_wrote_into_is_replaced() {
        let old = "# Runbook\n\n- [x] <!-- keel:check backup --> backup taken\n";
        let new = "# Runbook, again\n".to_string();
        assert_eq!(keep_history(old, new.clone(), "abc"), new);
    }
}
