//! The one event loop: a single `tokio::select!` over cancellation, the clock, key presses,
//! background reports and termination signals. The terminal is taken with `ratatui::init`
//! (whose panic hook gives it back) and always restored before returning.

use std::io;
use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::keys::action_for;
use super::model::{Action, Model, update};

/// How often the clock ticks (ages on screen move with it).
pub const TICKS_PER_SECOND: f64 = 4.0;

/// The two ends the screen talks to background work through: reports come in, requests go
/// out. The requests' queue has no bound, so sending never waits on a key press and never
/// drops anything: a refresh can journal a dozen events at once, and every one of them (and
/// every change the user confirmed) must reach the background work.
pub struct Channels {
    pub updates: mpsc::Receiver<super::Update>,
    pub requests: mpsc::UnboundedSender<super::model::Request>,
}

/// Takes the terminal, runs the loop until the user quits, a signal arrives or `cancel` fires,
/// and gives the terminal back, also when the loop fails.
pub async fn run(model: Model, channels: Channels, cancel: CancellationToken) -> io::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, model, channels, cancel).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    mut model: Model,
    channels: Channels,
    cancel: CancellationToken,
) -> io::Result<()> {
    let Channels {
        mut updates,
        requests,
    } = channels;
    // The first frame, before anything else happens.
    terminal.draw(|frame| frame.render_widget(&model, frame.area()))?;
    let size = terminal.size()?;
    update(&mut model, Action::Resize(size.width, size.height));

    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hangup = signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / TICKS_PER_SECOND));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut updates_open = true;

    while model.running {
        let action = tokio::select! {
            _ = cancel.cancelled() => Some(Action::Quit),
            _ = terminate.recv() => Some(Action::Quit),
            _ = hangup.recv() => Some(Action::Quit),
            _ = interrupt.recv() => Some(Action::Quit),
            _ = tick.tick() => Some(Action::Tick(Timestamp::now())),
            event = keys.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => {
                    panic_if_asked(&key);
                    action_for(&model, key)
                }
                Some(Ok(Event::Resize(width, height))) => Some(Action::Resize(width, height)),
                Some(Ok(_)) => None,
                Some(Err(e)) => Some(Action::Error(format!("reading the terminal failed: {e}"))),
                None => Some(Action::Quit),
            },
            report = updates.recv(), if updates_open => match report {
                Some(report) => Some(Action::Update(report)),
                None => {
                    updates_open = false;
                    None
                }
            },
        };
        let mut next = action;
        while let Some(action) = next {
            next = update(&mut model, action);
        }
        for request in model.take_requests() {
            if let Err(e) = requests.send(request) {
                tracing::warn!("background work has ended; a request was not taken: {e}");
            }
        }
        if model.running {
            terminal.draw(|frame| frame.render_widget(&model, frame.area()))?;
        }
    }
    Ok(())
}

/// A test seam: in test builds, the key named by `KUBE_RESCUE_TEST_PANIC_ON_KEY` panics here,
/// so that the suite sees the terminal given back after a panic. A release build never panics
/// here, whatever its environment.
fn panic_if_asked(key: &crossterm::event::KeyEvent) {
    if cfg!(debug_assertions)
        && let crossterm::event::KeyCode::Char(c) = key.code
        && std::env::var("KUBE_RESCUE_TEST_PANIC_ON_KEY").is_ok_and(|v| v.chars().eq([c]))
    {
        panic!("test panic on key {c:?}");
    }
}

fn signal(kind: tokio::signal::unix::SignalKind) -> io::Result<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(kind)
}
