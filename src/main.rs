fn main() {
    println!("dfa {}", env!("CARGO_PKG_VERSION"));
}
