//! Generates the Rust types and gRPC stubs. protoc comes from
//! `protoc-bin-vendored`, so a build needs nothing installed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; nothing else reads the environment here.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let root = "../../proto";
    let files = [
        "tessera/v1/events.proto",
        "tessera/v1/archive.proto",
        "tessera/v1/internal.proto",
    ];
    let paths: Vec<String> = files.iter().map(|f| format!("{root}/{f}")).collect();

    tonic_prost_build::configure()
        .bytes(".tessera.internal.v1.PutBlobRequest.chunk")
        .bytes(".tessera.internal.v1.BlobChunk.chunk")
        .bytes(".tessera.v1.IngestRequest.data")
        .bytes(".tessera.v1.RetrieveResponse.data")
        .compile_protos(&paths, &[root.to_string()])?;

    for f in files {
        println!("cargo:rerun-if-changed={root}/{f}");
    }
    Ok(())
}
