fn main() {
    eprintln!("vserverctl: not yet implemented");
    std::process::exit(1);
}
