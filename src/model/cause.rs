//! Cause vocabulary: the taxonomy's classes (`CauseClass`, C1..C30) and the deeper causes
//! (`Cause`) that reports and comparisons key on.
//!
//! Input: nothing (pure vocabulary). Output: closed enums rendered through one
//! `as_str`/`FromStr` pair each. Invariants: the strings are a stable interface (CSV,
//! Parquet, compare across versions): never rename one, only add.

macro_rules! string_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vm])* $var),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$var),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
        }
        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s { $($s => Ok($name::$var),)+ _ => Err(format!("unknown {} {s:?}", stringify!($name))) }
            }
        }
        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> { s.serialize_str(self.as_str()) }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// Root-cause classes of taxonomy.md section 4.
    pub enum CauseClass {
        C1 => "C1", C2 => "C2", C3 => "C3", C4 => "C4", C5 => "C5", C6 => "C6", C7 => "C7",
        C8 => "C8", C9 => "C9", C10 => "C10", C11 => "C11", C12 => "C12", C13 => "C13",
        C14 => "C14", C15 => "C15", C16 => "C16", C17 => "C17", C18 => "C18", C19 => "C19",
        C20 => "C20", C21 => "C21", C22 => "C22", C23 => "C23", C24 => "C24", C25 => "C25",
        C26 => "C26", C27 => "C27", C28 => "C28", C29 => "C29", C30 => "C30",
        /// nginx refused the request itself (`limit_req`, `limit_conn`): not an upstream
        /// failure, reported apart from the failures (outcome `refused`).
        RL => "RL",
        /// Noise or information: not an upstream failure.
        Info => "INFO",
        /// Looks upstream-related but no signature matched: counted and listed, never dropped.
        Unclassified => "UNCLASSIFIED",
        /// A failing request the logs cannot explain (the reason is given beside it).
        Unexplained => "UNEXPLAINED",
    }
}

impl CauseClass {
    /// The taxonomy's name of the class, in snake case.
    pub fn snake_name(self) -> &'static str {
        use CauseClass::*;
        match self {
            C1 => "backend_down_tcp",
            C2 => "fpm_socket_missing",
            C3 => "socket_permission",
            C4 => "pool_exhausted",
            C5 => "slow_backend",
            C6 => "request_terminated",
            C7 => "worker_crash",
            C8 => "worker_killed_oom",
            C9 => "hard_timeout",
            C10 => "php_memory_limit",
            C11 => "php_fatal",
            C12 => "script_not_found",
            C13 => "listen_allowed_clients",
            C14 => "fpm_reload_or_restart",
            C15 => "fpm_start_failure",
            C16 => "fpm_resource_limits",
            C17 => "upstream_connect_timeout",
            C18 => "network_unreachable",
            C19 => "local_port_exhaustion",
            C20 => "nginx_fd_or_conn_exhaustion",
            C21 => "dns_failure",
            C22 => "no_live_upstreams",
            C23 => "tls_handshake_failure",
            C24 => "tls_cert_untrusted",
            C25 => "protocol_mismatch",
            C26 => "header_too_big",
            C27 => "upstream_broken_pipe",
            C28 => "client_abort",
            C29 => "temp_io",
            C30 => "misconfig_nginx",
            RL => "request_limited",
            Info => "info",
            Unclassified => "unclassified",
            Unexplained => "unexplained",
        }
    }

    /// The cause a line of this class gets when nothing more is known.
    pub fn default_cause(self) -> Cause {
        use CauseClass::*;
        match self {
            C1 => Cause::BackendDown,
            C2 => Cause::FpmSocketMissing,
            C3 => Cause::SocketPermission,
            C4 => Cause::FpmPoolExhausted,
            C5 => Cause::SlowBackend,
            C6 => Cause::FpmRequestTerminated,
            C7 => Cause::WorkerCrash,
            C8 => Cause::WorkerKilled,
            C9 => Cause::HardTimeout,
            C10 => Cause::PhpMemoryLimit,
            C11 => Cause::PhpFatal,
            C12 => Cause::ScriptNotFound,
            C13 => Cause::AllowedClients,
            C14 => Cause::FpmRestartCut,
            C15 => Cause::FpmStartFailure,
            C16 => Cause::FpmResourceLimits,
            C17 => Cause::UpstreamConnectTimeout,
            C18 => Cause::NetworkUnreachable,
            C19 => Cause::LocalPortExhaustion,
            C20 => Cause::NginxFdOrConnExhaustion,
            C21 => Cause::DnsFailure,
            C22 => Cause::NoLiveUpstreams,
            C23 => Cause::TlsHandshakeFailure,
            C24 => Cause::TlsCertUntrusted,
            C25 => Cause::ProtocolMismatch,
            C26 => Cause::HeaderTooBig,
            C27 => Cause::UpstreamBrokenPipe,
            C28 => Cause::ClientAbort,
            C29 => Cause::TempIo,
            C30 => Cause::MisconfigNginx,
            RL => Cause::RateLimited,
            Info => Cause::Info,
            Unclassified => Cause::Unclassified,
            Unexplained => Cause::Unexplained,
        }
    }

    /// Requests nginx refused by itself: reported apart from the failures.
    pub fn is_refusal(self) -> bool {
        self == CauseClass::RL
    }

    /// Sort rank: C1 < C2 < ... < C30 < RL < INFO < UNCLASSIFIED < UNEXPLAINED.
    pub fn rank(self) -> usize {
        Self::ALL.iter().position(|c| *c == self).unwrap_or(usize::MAX)
    }
}

string_enum! {
    /// The deeper cause of a failure. The first fourteen are named by the issue tracker
    /// (issue 3); the others carry the snake-case name of their taxonomy class.
    pub enum Cause {
        BackendDown => "backend_down",
        UpstreamMisconfigured => "upstream_misconfigured",
        StartupRace => "startup_race",
        FpmRestartCut => "fpm_restart_cut",
        FpmRequestTerminated => "fpm_request_terminated",
        WorkerCrash => "worker_crash",
        WorkerKilled => "worker_killed",
        HardTimeout => "hard_timeout",
        FpmPoolExhausted => "fpm_pool_exhausted",
        SlowBackend => "slow_backend",
        TimeoutsMisaligned => "timeouts_misaligned",
        SocketPermission => "socket_permission",
        SelinuxSuspected => "selinux_suspected",
        AllowedClients => "allowed_clients",
        FpmSocketMissing => "fpm_socket_missing",
        PhpMemoryLimit => "php_memory_limit",
        PhpFatal => "php_fatal",
        ScriptNotFound => "script_not_found",
        FpmStartFailure => "fpm_start_failure",
        FpmResourceLimits => "fpm_resource_limits",
        UpstreamConnectTimeout => "upstream_connect_timeout",
        NetworkUnreachable => "network_unreachable",
        LocalPortExhaustion => "local_port_exhaustion",
        NginxFdOrConnExhaustion => "nginx_fd_or_conn_exhaustion",
        DnsFailure => "dns_failure",
        NoLiveUpstreams => "no_live_upstreams",
        TlsHandshakeFailure => "tls_handshake_failure",
        TlsCertUntrusted => "tls_cert_untrusted",
        ProtocolMismatch => "protocol_mismatch",
        HeaderTooBig => "header_too_big",
        UpstreamBrokenPipe => "upstream_broken_pipe",
        ClientAbort => "client_abort",
        TempIo => "temp_io",
        MisconfigNginx => "misconfig_nginx",
        /// The application answered 5xx itself (no upstream failure).
        AppError => "app_error",
        /// `limit_req` rejected the request (nginx answered 503 or `limit_req_status` itself).
        RateLimited => "rate_limited",
        /// `limit_conn` rejected the request.
        ConnLimited => "conn_limited",
        Info => "info",
        Unclassified => "unclassified",
        Unexplained => "unexplained",
    }
}

string_enum! {
    /// How sure the correlation is (README: "Confidence levels").
    pub enum Confidence {
        High => "high",
        Medium => "medium",
        Low => "low",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in Cause::ALL {
            assert_eq!(c.as_str().parse::<Cause>().unwrap(), *c);
            assert!(seen.insert(c.as_str()), "duplicate {c}");
        }
        for c in CauseClass::ALL {
            assert_eq!(c.as_str().parse::<CauseClass>().unwrap(), *c);
        }
        assert!("C31".parse::<CauseClass>().is_err());
    }

    #[test]
    fn every_class_has_a_default_cause() {
        // A class's default cause is its named cause where the tracker names one.
        assert_eq!(CauseClass::C1.default_cause(), Cause::BackendDown);
        assert_eq!(CauseClass::C6.default_cause(), Cause::FpmRequestTerminated);
        assert_eq!(CauseClass::C21.default_cause().as_str(), CauseClass::C21.snake_name());
        assert!(CauseClass::C1.rank() < CauseClass::C30.rank());
        assert!(CauseClass::C30.rank() < CauseClass::Info.rank());
    }
}
