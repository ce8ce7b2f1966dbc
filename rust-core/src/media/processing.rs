//! Hook points for echo cancellation and noise suppression.
//!
//! Capture frames pass through the chain before encoding; played frames are shown to it
//! (an echo canceller needs the far-end signal). Shipping none changes nothing in the
//! pipeline's shape: the chain is simply empty.

/// A stage that may change captured audio, e.g. an AEC or a noise suppressor.
pub trait AudioProcessor: Send {
    /// Processes a captured 20 ms frame in place, before it is encoded.
    fn process_capture(&mut self, frame: &mut [i16]);
    /// Sees a 20 ms frame that is about to be played (the echo reference).
    fn observe_playback(&mut self, _frame: &[i16]) {}
}

/// The processors a session runs, in order.
#[derive(Default)]
pub struct ProcessingChain {
    stages: Vec<Box<dyn AudioProcessor>>,
}

impl ProcessingChain {
    /// Appends a stage.
    pub fn push(&mut self, stage: Box<dyn AudioProcessor>) {
        self.stages.push(stage);
    }

    /// Runs every stage on a captured frame.
    pub fn capture(&mut self, frame: &mut [i16]) {
        for stage in &mut self.stages {
            stage.process_capture(frame);
        }
    }

    /// Shows every stage a frame about to be played.
    pub fn playback(&mut self, frame: &[i16]) {
        for stage in &mut self.stages {
            stage.observe_playback(frame);
        }
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// No stage at all.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }
}
