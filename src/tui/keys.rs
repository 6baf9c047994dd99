//! Key presses to Actions, in the habits of k9s and vim. Nothing else reads the keyboard.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::model::{Action, Model, View};

/// The Action a key press stands for in the model's current state, if any.
pub fn action_for(model: &Model, key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') | KeyCode::Char('d') => Some(Action::Quit),
            KeyCode::Char('o') if model.dialog.as_ref().is_some_and(|d| d.takes_text()) => {
                Some(Action::OverwriteLater)
            }
            _ => None,
        };
    }
    if let Some(dialog) = &model.dialog {
        if dialog.takes_text() {
            // Typing the object's name: every printable key is input, none a shortcut.
            return match key.code {
                KeyCode::Enter => Some(Action::Submit),
                KeyCode::Esc => Some(Action::Back),
                KeyCode::Backspace => Some(Action::TypeBackspace),
                KeyCode::Char(c) => Some(Action::Type(c)),
                KeyCode::Up => Some(Action::Up),
                KeyCode::Down => Some(Action::Down),
                KeyCode::PageUp => Some(Action::PageUp),
                KeyCode::PageDown => Some(Action::PageDown),
                _ => None,
            };
        }
        return match key.code {
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Esc | KeyCode::Char('q') => Some(Action::Back),
            KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
            KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(Action::PageDown),
            KeyCode::Char('g') | KeyCode::Home => Some(Action::Top),
            KeyCode::Char('G') | KeyCode::End => Some(Action::Bottom),
            _ => None,
        };
    }
    if model.command.is_some() {
        return match key.code {
            KeyCode::Enter => Some(Action::CommandDone),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Backspace => Some(Action::CommandBackspace),
            KeyCode::Char(c) => Some(Action::CommandInput(c)),
            _ => None,
        };
    }
    if model.filtering {
        return match key.code {
            KeyCode::Enter => Some(Action::FilterDone),
            KeyCode::Esc => Some(Action::Back),
            KeyCode::Backspace => Some(Action::FilterBackspace),
            KeyCode::Char(c) => Some(Action::FilterInput(c)),
            KeyCode::Up => Some(Action::Up),
            KeyCode::Down => Some(Action::Down),
            _ => None,
        };
    }
    if model.detail && model.view == View::Findings {
        match key.code {
            KeyCode::Enter => return Some(Action::RunStep),
            KeyCode::Char('m') => return Some(Action::MarkStep),
            _ => {}
        }
    }
    match key.code {
        KeyCode::Char('q') => Some(Action::Quit),
        KeyCode::Char('?') => Some(Action::ToggleHelp),
        KeyCode::Tab => Some(Action::NextView),
        KeyCode::BackTab => Some(Action::PrevView),
        KeyCode::Char(c @ '1'..='9') => {
            View::from_number(c as usize - '0' as usize).map(Action::GoTo)
        }
        KeyCode::Char('j') | KeyCode::Down => Some(Action::Down),
        KeyCode::Char('k') | KeyCode::Up => Some(Action::Up),
        KeyCode::Char('g') | KeyCode::Home => Some(Action::Top),
        KeyCode::Char('G') | KeyCode::End => Some(Action::Bottom),
        KeyCode::Enter => Some(Action::Detail),
        KeyCode::Esc => Some(Action::Back),
        KeyCode::Char('/') => Some(Action::StartFilter),
        KeyCode::Char(':') => Some(Action::StartCommand),
        KeyCode::Char('r') => Some(Action::RefreshNow),
        KeyCode::Char('a') => Some(Action::OpenActions),
        KeyCode::Char('u') => Some(Action::Undo),
        _ => None,
    }
}
