fn main() {
    vserver_sandbox::reaper::main_if_reaper();
    eprintln!("vserverd: not yet implemented");
    std::process::exit(1);
}
