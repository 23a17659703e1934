//! The command table: names, arity, flags and how each command is routed.

/// Where a command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// On the connection (PING, CLIENT, ...).
    Conn,
    /// On the shard owning the key at argument 1.
    Key,
    /// On the shards owning its keys: every argument from 1 (`step` 1) or
    /// every other one (MSET, `step` 2). Atomic across shards.
    Keys {
        /// Distance between keys (2 for MSET's key-value pairs).
        step: usize,
    },
    /// On every shard, results joined (KEYS, SCAN, DBSIZE, FLUSHALL).
    All,
}

macro_rules! commands {
    ($($variant:ident $name:literal $arity:literal $route:expr, $write:literal $oom:literal;)*) => {
        /// A known command.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Cmd { $(
            #[doc = concat!("`", $name, "`")]
            $variant,
        )* }

        /// Every command, for `COMMAND`.
        pub const ALL: &[Cmd] = &[$(Cmd::$variant),*];

        impl Cmd {
            /// The lower-case name (as Redis prints it in errors).
            pub fn name(self) -> &'static str {
                match self { $(Cmd::$variant => $name,)* }
            }

            /// Redis arity: `n` exactly n arguments (name included), `-n`
            /// at least n.
            pub fn arity(self) -> i32 {
                match self { $(Cmd::$variant => $arity,)* }
            }

            /// How the command is routed.
            pub fn route(self) -> Route {
                match self { $(Cmd::$variant => $route,)* }
            }

            /// Whether it changes the keyspace (and is logged).
            pub fn is_write(self) -> bool {
                match self { $(Cmd::$variant => $write,)* }
            }

            /// Whether it may grow memory (refused past `--maxmemory`).
            pub fn deny_oom(self) -> bool {
                match self { $(Cmd::$variant => $oom,)* }
            }

            /// Looks a name up, ignoring ASCII case.
            pub fn lookup(name: &[u8]) -> Option<Cmd> {
                let mut upper = [0u8; 16];
                if name.len() > upper.len() {
                    return None;
                }
                for (u, b) in upper.iter_mut().zip(name) {
                    *u = b.to_ascii_lowercase();
                }
                let lower = &upper[..name.len()];
                $(if lower == $name.as_bytes() { return Some(Cmd::$variant); })*
                None
            }
        }
    };
}

use Route::{All, Conn, Key, Keys};

// Most frequent first: `lookup` tries them in order.
commands! {
    Get "get" 2 Key, false false;
    Set "set" -3 Key, true true;
    Incr "incr" 2 Key, true true;
    Lpush "lpush" -3 Key, true true;
    Rpush "rpush" -3 Key, true true;
    Lpop "lpop" -2 Key, true false;
    Rpop "rpop" -2 Key, true false;
    Sadd "sadd" -3 Key, true true;
    Hset "hset" -4 Key, true true;
    Mset "mset" -3 Keys { step: 2 }, true true;
    Mget "mget" -2 Keys { step: 1 }, false false;
    Ping "ping" -1 Conn, false false;
    Echo "echo" 2 Conn, false false;
    Quit "quit" -1 Conn, false false;
    Select "select" 2 Conn, false false;
    Command "command" -1 Conn, false false;
    Config "config" -2 Conn, false false;
    Client "client" -2 Conn, false false;
    Info "info" -1 Conn, false false;
    Shutdown "shutdown" -1 Conn, false false;
    Dbsize "dbsize" 1 All, false false;
    Keys "keys" 2 All, false false;
    Scan "scan" -2 All, false false;
    Flushall "flushall" -1 All, true false;
    Flushdb "flushdb" -1 All, true false;
    Getset "getset" 3 Key, true true;
    Append "append" 3 Key, true true;
    Strlen "strlen" 2 Key, false false;
    Incrby "incrby" 3 Key, true true;
    Decr "decr" 2 Key, true true;
    Decrby "decrby" 3 Key, true true;
    Del "del" -2 Keys { step: 1 }, true false;
    Exists "exists" -2 Keys { step: 1 }, false false;
    Expire "expire" -3 Key, true false;
    Pexpire "pexpire" -3 Key, true false;
    Expireat "expireat" -3 Key, true false;
    Pexpireat "pexpireat" -3 Key, true false;
    Ttl "ttl" 2 Key, false false;
    Pttl "pttl" 2 Key, false false;
    Persist "persist" 2 Key, true false;
    Type "type" 2 Key, false false;
    Llen "llen" 2 Key, false false;
    Lrange "lrange" 4 Key, false false;
    Hget "hget" 3 Key, false false;
    Hdel "hdel" -3 Key, true false;
    Hgetall "hgetall" 2 Key, false false;
    Hlen "hlen" 2 Key, false false;
    Srem "srem" -3 Key, true false;
    Smembers "smembers" 2 Key, false false;
    Scard "scard" 2 Key, false false;
    Spop "spop" -2 Key, true false;
}

impl Cmd {
    /// Whether `argc` arguments (name included) fit the arity, plus the
    /// pairs MSET and HSET need.
    pub fn arity_ok(self, argc: usize) -> bool {
        let a = self.arity();
        let fits = if a >= 0 {
            argc == a as usize
        } else {
            argc >= (-a) as usize
        };
        fits && match self {
            Cmd::Mset => !argc.is_multiple_of(2),
            Cmd::Hset => argc.is_multiple_of(2),
            _ => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_knows_every_name() {
        assert_eq!(Cmd::lookup(b"GeT"), Some(Cmd::Get));
        assert_eq!(Cmd::lookup(b"nosuchcommand"), None);
        assert_eq!(Cmd::lookup(b"averyveryverylongname"), None);
        for &c in ALL {
            assert_eq!(Cmd::lookup(c.name().to_uppercase().as_bytes()), Some(c));
        }
    }

    #[test]
    fn arity() {
        assert!(Cmd::Get.arity_ok(2) && !Cmd::Get.arity_ok(3));
        assert!(Cmd::Mset.arity_ok(5) && !Cmd::Mset.arity_ok(4));
        assert!(Cmd::Hset.arity_ok(4) && !Cmd::Hset.arity_ok(5));
        assert!(Cmd::Del.arity_ok(9) && !Cmd::Del.arity_ok(1));
    }
}
