//! Server-sent events, read line by line as they arrive.
//!
//! Lenient where servers differ: `data:` with or without a space, `\r\n` or `\n` line ends,
//! comment lines, several `data:` lines joined, and a last event without its blank line.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct Parser {
    event: Option<String>,
    data: Option<String>,
}

impl Parser {
    /// Feeds one line (its line ending may still be attached); returns the event it completes.
    pub fn line(&mut self, line: &str) -> Option<Event> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_owned()),
            },
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` matter to browsers reconnecting, not to us.
            _ => {}
        }
        None
    }

    /// The event still pending when the stream ended without a blank line.
    pub fn finish(&mut self) -> Option<Event> {
        self.dispatch()
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = self.event.take();
        self.data.take().map(|data| Event { event, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut events: Vec<Event> = text
            .split_inclusive('\n')
            .filter_map(|l| parser.line(l))
            .collect();
        events.extend(parser.finish());
        events
    }

    #[test]
    fn reads_what_servers_send() {
        let events = parse(
            ": keep-alive\r\ndata: {\"a\":1}\r\n\r\ndata:{\"b\":2}\n\nevent: end\ndata: x\ndata: y\n\ndata: [DONE]",
        );
        assert_eq!(
            events,
            vec![
                Event {
                    event: None,
                    data: "{\"a\":1}".into()
                },
                Event {
                    event: None,
                    data: "{\"b\":2}".into()
                },
                Event {
                    event: Some("end".into()),
                    data: "x\ny".into()
                },
                Event {
                    event: None,
                    data: "[DONE]".into()
                },
            ]
        );
    }
}
