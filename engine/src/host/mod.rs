//! The plugin host: loads strategy `.so` files, checks their descriptor, and dispatches
//! callbacks.
//!
//! Loading ([`Plugin::load`]): `dlopen` through `libloading`, look up
//! [`strike_sdk::abi::ENTRY_SYMBOL`], read the descriptor's stable prefix, and refuse — with
//! what was found and what was expected — a wrong magic, ABI version, descriptor/vtable size,
//! SDK version (major.minor) or rustc version. Libraries are never unloaded (`Library` is
//! leaked): a strategy's code and statics stay valid for the life of the process.
//!
//! Dispatch ([`HostedStrategy`]): every callback goes through the plugin's `catch_unwind` shim.
//! A callback that reports [`CallStatus::Panicked`] disables the strategy for good; the trader
//! then cancels its resting orders and carries on with the others.

use std::fmt;
use std::path::{Path, PathBuf};
use strike_sdk::abi::{
    CallStatus, ErrBuf, State, StrRef, StrategyDescriptor, ABI_MAGIC, ABI_VERSION, ENTRY_SYMBOL, RUSTC_VERSION,
    SDK_VERSION,
};
use strike_sdk::ctx::Ctx;
use strike_sdk::market::{MarketId, Universe};
use strike_sdk::order::{Fill, OrderUpdate, Signal, Trade};

/// Why a plugin could not be loaded or created. Each message says what to do.
#[derive(Debug)]
pub enum HostError {
    /// The file does not exist.
    NotFound(PathBuf),
    /// `dlopen` failed.
    Load {
        /// The plugin.
        path: PathBuf,
        /// The loader's message.
        msg: String,
    },
    /// The library exports no entry symbol.
    NoEntry(PathBuf),
    /// The descriptor does not match this engine.
    Mismatch {
        /// The plugin.
        path: PathBuf,
        /// Which property.
        what: &'static str,
        /// What the plugin has.
        found: String,
        /// What the engine expects.
        expected: String,
    },
    /// The strategy refused its configuration or panicked while being created.
    Create {
        /// Strategy name.
        name: String,
        /// The strategy's message.
        msg: String,
    },
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::NotFound(p) => write!(
                f,
                "strategy plugin {} not found: build it with `cargo build --release -p <crate>` and pass the .so path",
                p.display()
            ),
            HostError::Load { path, msg } => write!(f, "cannot load strategy plugin {}: {msg}", path.display()),
            HostError::NoEntry(p) => write!(
                f,
                "{} is not a Strike strategy plugin: it exports no `strike_strategy_entry` symbol \
                 (call `strike_sdk::export_strategy!(YourStrategy)` and build with crate-type = [\"cdylib\"])",
                p.display()
            ),
            HostError::Mismatch { path, what, found, expected } => write!(
                f,
                "refusing strategy plugin {}: {what} mismatch: plugin has {found}, engine expects {expected}; \
                 rebuild the plugin against this engine's strike-sdk with the same toolchain",
                path.display()
            ),
            HostError::Create { name, msg } => write!(f, "strategy `{name}` refused to start: {msg}"),
        }
    }
}

impl std::error::Error for HostError {}

/// A loaded, checked plugin (its library is never unloaded).
#[derive(Clone, Copy)]
pub struct Plugin {
    desc: &'static StrategyDescriptor,
    name: &'static str,
}

fn major_minor(v: &str) -> &str {
    match v.match_indices('.').nth(1) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}

impl Plugin {
    /// Loads and checks the plugin at `path`; see the module docs.
    pub fn load(path: &Path) -> Result<Plugin, HostError> {
        if !path.exists() {
            return Err(HostError::NotFound(path.to_path_buf()));
        }
        // SAFETY: loading a library runs its initialisers; plugins are trusted code by design.
        let lib = unsafe { libloading::Library::new(path) }
            .map_err(|e| HostError::Load { path: path.to_path_buf(), msg: e.to_string() })?;
        let lib: &'static libloading::Library = Box::leak(Box::new(lib));
        // SAFETY: the symbol's type is fixed by the ABI.
        let entry: libloading::Symbol<'static, extern "C" fn() -> *const StrategyDescriptor> =
            unsafe { lib.get(ENTRY_SYMBOL) }.map_err(|_| HostError::NoEntry(path.to_path_buf()))?;
        let ptr = entry();
        if ptr.is_null() {
            return Err(HostError::Mismatch {
                path: path.to_path_buf(),
                what: "descriptor",
                found: "a null descriptor".into(),
                expected: "a descriptor".into(),
            });
        }
        // SAFETY: the entry returns a pointer to a static descriptor; only the stable prefix is
        // read before the version check.
        unsafe { Self::from_raw(ptr, path) }
    }

    /// Checks a descriptor that is linked into this binary (benchmarks, tests).
    pub fn from_static(desc: &'static StrategyDescriptor) -> Result<Plugin, HostError> {
        // SAFETY: a `&'static` descriptor is valid for reads.
        unsafe { Self::from_raw(desc, Path::new("<built-in>")) }
    }

    unsafe fn from_raw(ptr: *const StrategyDescriptor, path: &Path) -> Result<Plugin, HostError> {
        let mismatch = |what: &'static str, found: String, expected: String| HostError::Mismatch {
            path: path.to_path_buf(),
            what,
            found,
            expected,
        };
        let magic = core::ptr::read(core::ptr::addr_of!((*ptr).magic));
        if magic != ABI_MAGIC {
            return Err(mismatch("magic", format!("{magic:#018x}"), format!("{ABI_MAGIC:#018x}")));
        }
        let abi = core::ptr::read(core::ptr::addr_of!((*ptr).abi_version));
        if abi != ABI_VERSION {
            return Err(mismatch("ABI version", format!("v{abi}"), format!("v{ABI_VERSION}")));
        }
        let size = core::ptr::read(core::ptr::addr_of!((*ptr).descriptor_size)) as usize;
        if size < core::mem::size_of::<StrategyDescriptor>() {
            return Err(mismatch(
                "descriptor size",
                format!("{size} bytes"),
                format!("{} bytes", core::mem::size_of::<StrategyDescriptor>()),
            ));
        }
        let desc: &'static StrategyDescriptor = &*ptr;
        if (desc.vtable_size as usize) < core::mem::size_of::<strike_sdk::abi::StrategyVtable>() {
            return Err(mismatch(
                "vtable size",
                format!("{} bytes", desc.vtable_size),
                format!("{} bytes", core::mem::size_of::<strike_sdk::abi::StrategyVtable>()),
            ));
        }
        let text = |s: StrRef, what: &'static str| -> Result<&'static str, HostError> {
            s.as_str(strike_sdk::abi::MAX_NAME_LEN)
                .ok_or_else(|| mismatch(what, "unreadable text".into(), "UTF-8 text".into()))
        };
        let sdk = text(desc.sdk_version, "SDK version")?;
        if major_minor(sdk) != major_minor(SDK_VERSION) {
            return Err(mismatch(
                "strike-sdk version",
                sdk.to_string(),
                format!("{} (any patch)", major_minor(SDK_VERSION)),
            ));
        }
        let rustc = text(desc.rustc_version, "rustc version")?;
        if rustc != RUSTC_VERSION {
            return Err(mismatch("rustc version", rustc.to_string(), RUSTC_VERSION.to_string()));
        }
        let name = text(desc.name, "strategy name")?;
        Ok(Plugin { desc, name })
    }

    /// The strategy's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Creates a strategy instance from TOML `config` over `universe`.
    pub fn create(&self, config: &str, universe: &Universe, slot: u16) -> Result<HostedStrategy, HostError> {
        let mut buf = [0u8; 2048];
        let mut err = ErrBuf { ptr: buf.as_mut_ptr(), cap: buf.len(), len: 0 };
        // SAFETY: the vtable came from a checked descriptor; the arguments live for the call.
        let state = unsafe { (self.desc.vtable.create)(StrRef::borrow(config), universe, &mut err) };
        if state.is_null() {
            let msg = String::from_utf8_lossy(&buf[..err.len.min(buf.len())]).into_owned();
            return Err(HostError::Create { name: self.name.to_string(), msg });
        }
        Ok(HostedStrategy { plugin: *self, state, slot, enabled: true, panics: 0, disabled_in: None })
    }
}

/// A live strategy instance owned by the trader.
pub struct HostedStrategy {
    plugin: Plugin,
    state: State,
    /// The strategy's slot (index) in the trader.
    pub slot: u16,
    enabled: bool,
    /// Panics caught (a strategy is disabled at the first).
    pub panics: u32,
    /// The callback that panicked, if any.
    pub disabled_in: Option<&'static str>,
}

// SAFETY: the state is only touched from the thread that owns the trader.
unsafe impl Send for HostedStrategy {}

macro_rules! dispatch {
    ($self:ident, $name:literal, $call:expr) => {{
        if !$self.enabled {
            return false;
        }
        // SAFETY: state came from this plugin's `create` and is used from one thread.
        let status = unsafe { $call };
        if status == CallStatus::Panicked {
            $self.enabled = false;
            $self.panics += 1;
            $self.disabled_in = Some($name);
            return false;
        }
        true
    }};
}

impl HostedStrategy {
    /// The strategy's name.
    pub fn name(&self) -> &'static str {
        self.plugin.name
    }
    /// False once a callback panicked.
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// `on_book`; false when disabled (now or before).
    #[inline]
    pub fn on_book(&mut self, ctx: &mut Ctx, m: MarketId) -> bool {
        dispatch!(self, "on_book", (self.plugin.desc.vtable.on_book)(self.state, ctx, m))
    }
    /// `on_trade`.
    #[inline]
    pub fn on_trade(&mut self, ctx: &mut Ctx, t: &Trade) -> bool {
        dispatch!(self, "on_trade", (self.plugin.desc.vtable.on_trade)(self.state, ctx, t))
    }
    /// `on_fill`.
    #[inline]
    pub fn on_fill(&mut self, ctx: &mut Ctx, f: &Fill) -> bool {
        dispatch!(self, "on_fill", (self.plugin.desc.vtable.on_fill)(self.state, ctx, f))
    }
    /// `on_order_update`.
    #[inline]
    pub fn on_order_update(&mut self, ctx: &mut Ctx, u: &OrderUpdate) -> bool {
        dispatch!(self, "on_order_update", (self.plugin.desc.vtable.on_order_update)(self.state, ctx, u))
    }
    /// `on_signal`.
    #[inline]
    pub fn on_signal(&mut self, ctx: &mut Ctx, s: &Signal) -> bool {
        dispatch!(self, "on_signal", (self.plugin.desc.vtable.on_signal)(self.state, ctx, s))
    }
    /// `on_timer`.
    #[inline]
    pub fn on_timer(&mut self, ctx: &mut Ctx, now_ns: u64) -> bool {
        dispatch!(self, "on_timer", (self.plugin.desc.vtable.on_timer)(self.state, ctx, now_ns))
    }
    /// `on_shutdown`.
    pub fn on_shutdown(&mut self, ctx: &mut Ctx) -> bool {
        dispatch!(self, "on_shutdown", (self.plugin.desc.vtable.on_shutdown)(self.state, ctx))
    }
}

impl Drop for HostedStrategy {
    fn drop(&mut self) {
        // The plugin frees its own state. A panicking destroy is contained by its shim.
        // SAFETY: state came from `create` and is dropped once.
        let _ = unsafe { (self.plugin.desc.vtable.destroy)(self.state) };
    }
}
