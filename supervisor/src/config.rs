//! Supervisor specifications: strategy, restart intensity, auto-shutdown,
//! children (static) or a template (dynamic), and their validation.

use crate::clock::{Clock, SharedClock};
use crate::error::SpecError;
use crate::spec::{ChildSpec, Restart, SpecCore};
use std::any::TypeId;
use std::collections::HashSet;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// How a static supervisor restarts its children (OTP's strategies).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Only the child that exited is restarted.
    #[default]
    OneForOne,
    /// Every other child is stopped (in reverse start order), then all are
    /// restarted in start order.
    OneForAll,
    /// The child that exited and every child started after it are stopped
    /// (in reverse start order) and restarted (in start order); earlier
    /// children are left alone.
    RestForOne,
}

/// When a supervisor shuts itself down because significant children
/// exited (OTP 24's `auto_shutdown`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum AutoShutdown {
    /// Never (significant children are then invalid).
    #[default]
    Never,
    /// When any significant child exits by itself and is not restarted.
    AnySignificant,
    /// When the last running significant child exits by itself and is not
    /// restarted.
    AllSignificant,
}

/// What kind of supervisor, as shown by `which_children` and the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// A static supervisor with this strategy.
    Static(Strategy),
    /// A dynamic supervisor (OTP's `simple_one_for_one`).
    Dynamic,
}

/// Settings shared by both kinds of supervisor.
#[derive(Clone, Debug)]
pub(crate) struct Flags {
    pub(crate) intensity: u32,
    pub(crate) period: Duration,
    pub(crate) auto_shutdown: AutoShutdown,
    pub(crate) retry_delay: Duration,
    pub(crate) clock: SharedClock,
    pub(crate) label: Option<String>,
}

impl Default for Flags {
    fn default() -> Self {
        Self {
            // OTP's defaults: intensity 1, period 5 s.
            intensity: 1,
            period: Duration::from_secs(5),
            auto_shutdown: AutoShutdown::Never,
            retry_delay: DEFAULT_RETRY_DELAY,
            clock: SharedClock::default(),
            label: None,
        }
    }
}

/// How long a supervisor waits before retrying a restart that failed
/// (unless the child's backoff asks for longer): long enough that the
/// shard goes back to its event loop between attempts.
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_millis(1);

/// The children of a supervisor: a list (static) or a template (dynamic).
#[derive(Clone, Debug)]
pub(crate) enum Children {
    Static(Strategy, Vec<SpecCore>),
    Dynamic { template: SpecCore, arg: TypeId },
}

/// A validated-on-start supervisor configuration, either kind.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) flags: Flags,
    pub(crate) children: Children,
}

impl Config {
    /// Checks the whole tree below this supervisor.
    pub(crate) fn validate(&self) -> Result<(), SpecError> {
        if self.flags.period.is_zero() {
            return Err(SpecError::ZeroPeriod);
        }
        match &self.children {
            Children::Static(_, specs) => {
                let mut ids = HashSet::new();
                for spec in specs {
                    if !ids.insert(spec.id.as_str()) {
                        return Err(SpecError::DuplicateId(spec.id.clone()));
                    }
                    check_child(spec, self.flags.auto_shutdown)?;
                }
                Ok(())
            }
            Children::Dynamic { template, .. } => {
                if self.flags.auto_shutdown != AutoShutdown::Never || template.significant {
                    return Err(SpecError::AutoShutdownOnDynamic);
                }
                check_child(template, AutoShutdown::Never)
            }
        }
    }
}

/// OTP 24's rules for one child (plus backoff sanity), and its subtree.
pub(crate) fn check_child(spec: &SpecCore, auto: AutoShutdown) -> Result<(), SpecError> {
    if spec.significant {
        if spec.restart == Restart::Permanent {
            return Err(SpecError::SignificantPermanent(spec.id.clone()));
        }
        if auto == AutoShutdown::Never {
            return Err(SpecError::SignificantWithoutAutoShutdown(spec.id.clone()));
        }
    }
    if !spec.backoff.is_valid() {
        return Err(SpecError::InvalidBackoff(spec.id.clone()));
    }
    if let Some(nested) = spec.starter.nested() {
        nested.validate().map_err(|e| SpecError::Nested {
            id: spec.id.clone(),
            error: Box::new(e),
        })?;
    }
    Ok(())
}

/// Builder methods shared by both specification kinds.
macro_rules! flag_setters {
    () => {
        /// At most `intensity` restarts within any `period` (OTP's
        /// `intensity` and `period`; default 1 in 5 s). One more makes the
        /// supervisor stop its children and exit with `Shutdown`, for its
        /// own supervisor to decide.
        pub fn intensity(mut self, intensity: u32, period: Duration) -> Self {
            self.flags.intensity = intensity;
            self.flags.period = period;
            self
        }

        /// The clock the intensity window reads (default: the system's
        /// monotonic clock). Tests pass a [`crate::ManualClock`].
        pub fn clock(mut self, clock: impl Clock) -> Self {
            self.flags.clock = SharedClock(Arc::new(clock));
            self
        }

        /// The delay before a failed restart is tried again, unless the
        /// child's backoff asks for longer (default
        /// [`DEFAULT_RETRY_DELAY`]; at least 1 ms, so that the shard runs
        /// its other work between attempts).
        pub fn retry_delay(mut self, delay: Duration) -> Self {
            self.flags.retry_delay = delay.max(Duration::from_millis(1));
            self
        }

        /// A label shown in logs and in the printed tree.
        pub fn label(mut self, label: impl Into<String>) -> Self {
            self.flags.label = Some(label.into());
            self
        }
    };
}

/// A static supervisor: a strategy and an ordered list of children.
///
/// Children start in list order (then `start_child` order) and stop in
/// reverse.
#[derive(Clone, Debug)]
pub struct SupervisorSpec {
    pub(crate) flags: Flags,
    strategy: Strategy,
    children: Vec<SpecCore>,
}

impl SupervisorSpec {
    /// A supervisor with `strategy`, OTP's default intensity (1 restart in
    /// 5 s), no auto-shutdown and no children yet.
    pub fn new(strategy: Strategy) -> Self {
        Self {
            flags: Flags::default(),
            strategy,
            children: Vec::new(),
        }
    }

    flag_setters!();

    /// When to shut down automatically because significant children
    /// exited.
    pub fn auto_shutdown(mut self, auto: AutoShutdown) -> Self {
        self.flags.auto_shutdown = auto;
        self
    }

    /// Adds a child, started after those added before it.
    pub fn child(mut self, spec: ChildSpec) -> Self {
        self.children.push(spec.core);
        self
    }

    /// Adds children in order.
    pub fn children(mut self, specs: impl IntoIterator<Item = ChildSpec>) -> Self {
        self.children.extend(specs.into_iter().map(|s| s.core));
        self
    }

    pub(crate) fn into_config(self) -> Config {
        Config {
            flags: self.flags,
            children: Children::Static(self.strategy, self.children),
        }
    }
}

/// A dynamic supervisor (OTP's `simple_one_for_one`): one template, any
/// number of children started on demand with an argument of type `A`.
///
/// Its children are restarted by their template's restart type, each on
/// its own (one for one), with a clone of its argument; they have no ids,
/// cannot be restarted or deleted by hand, and are shut down concurrently
/// under one timer.
pub struct DynamicSpec<A> {
    pub(crate) flags: Flags,
    template: SpecCore,
    _arg: PhantomData<fn(A)>,
}

impl<A> Clone for DynamicSpec<A> {
    fn clone(&self) -> Self {
        Self {
            flags: self.flags.clone(),
            template: self.template.clone(),
            _arg: PhantomData,
        }
    }
}

impl<A> std::fmt::Debug for DynamicSpec<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamicSpec")
            .field("flags", &self.flags)
            .field("template", &self.template)
            .finish()
    }
}

impl<A: Clone + Send + Sync + 'static> DynamicSpec<A> {
    /// A dynamic supervisor for `template` (see [`ChildSpec::template`]).
    pub fn new(template: ChildSpec<A>) -> Self {
        Self {
            flags: Flags::default(),
            template: template.core,
            _arg: PhantomData,
        }
    }

    flag_setters!();

    pub(crate) fn into_config(self) -> Config {
        Config {
            flags: self.flags,
            children: Children::Dynamic {
                template: self.template,
                arg: TypeId::of::<A>(),
            },
        }
    }
}

impl ChildSpec {
    /// A child that is itself a static supervisor (kind `Supervisor`,
    /// shutdown `Infinity`: its subtree stops before it does).
    pub fn supervisor(id: impl Into<String>, spec: SupervisorSpec) -> Self {
        Self::supervisor_from(id, crate::server::starter(spec.into_config()))
    }

    /// A child that is a dynamic supervisor. Talk to it with
    /// [`crate::DynamicRef::from_pid`].
    pub fn dynamic_supervisor<A: Clone + Send + Sync + 'static>(
        id: impl Into<String>,
        spec: DynamicSpec<A>,
    ) -> Self {
        Self::supervisor_from(id, crate::server::starter(spec.into_config()))
    }
}
