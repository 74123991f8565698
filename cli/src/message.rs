//! How errors read on the command line.

/// `error` as one paragraph: its context chain joined by `: `, leaving out a
/// cause whose text the message before it already ends with (an I/O error
/// that a library both quotes and returns as its source, say).
pub fn format_error(error: &anyhow::Error) -> String {
    join_causes(error.chain().map(|cause| cause.to_string()))
}

/// Messages joined by `: `, each left out if the text so far already ends
/// with it.
pub fn join_causes(causes: impl IntoIterator<Item = String>) -> String {
    let mut text = String::new();
    for cause in causes {
        if text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// A transform error as the command line should say it: in the words of
/// this command's flags where the library speaks of options.
pub fn transform_error(error: asyncify_transform::Error) -> anyhow::Error {
    match &error {
        asyncify_transform::Error::Options(message)
            if message.starts_with("the module has no memory") =>
        {
            anyhow::anyhow!(
                "the module has no memory to hold the asyncify buffer; add \
                 --secondary-memory to give the buffer a memory of its own (exported as \
                 `asyncify_memory`; --secondary-memory=PAGES for more than one 64 KiB page)"
            )
        }
        _ => error.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::format_error;
    use anyhow::Context;

    #[test]
    fn a_cause_the_message_already_quotes_is_left_out() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let error = Err::<(), _>(io)
            .context("cannot read `x`: gone")
            .context("in --imports")
            .unwrap_err();
        assert_eq!(format_error(&error), "in --imports: cannot read `x`: gone");
    }
}
