//! `VSERVER_HEAVY=1` turns the heavy tests (debootstrap, network registry) from ignored into run.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(vserver_heavy)");
    println!("cargo::rerun-if-env-changed=VSERVER_HEAVY");
    if std::env::var("VSERVER_HEAVY").is_ok_and(|v| v == "1") {
        println!("cargo::rustc-cfg=vserver_heavy");
    }
}
