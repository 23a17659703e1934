//! `CORELET_SHARDS` and `CORELET_PIN` configure a builder that leaves
//! those settings alone; explicit builder settings win.
//!
//! One test only: it sets process-wide environment variables.

use corelet::{Error, Runtime};

#[test]
fn environment_variables_configure_the_default_builder() {
    std::env::set_var("CORELET_SHARDS", "3");
    std::env::set_var("CORELET_PIN", "0");
    let rt = Runtime::builder().build().unwrap();
    assert_eq!(rt.shard_count(), 3);
    assert_eq!(rt.stats().unwrap().len(), 3);
    drop(rt);

    // An explicit setting wins over the variable.
    let rt = Runtime::builder().shards(2).build().unwrap();
    assert_eq!(rt.shard_count(), 2);
    drop(rt);

    // Pinning more shards than there are cores is refused. (No machine
    // running this has 4096 cores.)
    std::env::set_var("CORELET_SHARDS", "4096");
    std::env::set_var("CORELET_PIN", "1");
    assert!(matches!(Runtime::builder().build(), Err(Error::Build(_))));
    // An explicit pin(false) wins over CORELET_PIN=1 (a small runtime, so
    // that the check above cannot have passed for a lack of threads).
    let rt = Runtime::builder().shards(2).pin(false).build().unwrap();
    assert_eq!(rt.shard_count(), 2);
    drop(rt);

    // Garbage is refused, not ignored.
    std::env::set_var("CORELET_PIN", "0");
    for garbage in ["three", "-1", "", "2.5", "0"] {
        std::env::set_var("CORELET_SHARDS", garbage);
        assert!(
            matches!(Runtime::builder().build(), Err(Error::Build(_))),
            "CORELET_SHARDS={garbage:?}"
        );
    }
    std::env::set_var("CORELET_SHARDS", "2");
    std::env::set_var("CORELET_PIN", "yes");
    assert!(matches!(Runtime::builder().build(), Err(Error::Build(_))));

    std::env::remove_var("CORELET_SHARDS");
    std::env::remove_var("CORELET_PIN");
}
