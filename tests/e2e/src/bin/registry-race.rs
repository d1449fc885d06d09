//! `registry-race RUN_DIR CONTEXT START_NS`: registers this process as context CONTEXT at the
//! wall-clock instant START_NS (nanoseconds since the epoch), prints `ok N` or `err ERRNO`,
//! then stays alive (its entry live) for 0.15 s. Several of these at once probe whether the
//! registry's claim is atomic.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vserver_engine::registry::{self, Entry};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: registry-race RUN_DIR CONTEXT START_NS");
        std::process::exit(2);
    }
    let run_dir = std::path::PathBuf::from(&args[1]);
    let context: u32 = args[2].parse().expect("context");
    let start: u128 = args[3].parse().expect("start");
    let (pid, start_time) = registry::me();
    let entry = Entry {
        context,
        name: format!("racer-{pid}"),
        pid,
        start_time,
        owner_pid: pid,
        owner_start_time: start_time,
        flags: Default::default(),
        caps: vserver_engine::CapSet::empty(),
        own_network: false,
    };
    while SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() < start {
        std::hint::spin_loop();
    }
    match registry::register(&run_dir, &entry) {
        Ok(n) => println!("ok {n}"),
        Err(e) => println!("err {}", e.errno),
    }
    std::thread::sleep(Duration::from_millis(150));
}
