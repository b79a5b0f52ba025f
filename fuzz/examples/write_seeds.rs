//! Writes the seed inputs of every fuzz target into `seeds/<target>/` beside this crate's
//! manifest: signed envelopes and payloads, encoded entries, checkpoints, notes, tlog-proofs,
//! tile paths and an entry bundle. Run with `cargo run --example write_seeds` in `fuzz/`.

use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let payloads = veche_fuzz::seed_commands()
        .iter()
        .map(|command| command.to_payload())
        .collect::<Vec<_>>();
    let fields = vec![
        b"2026-11-18T11:06:40.001Z".to_vec(),
        b"2026-11-18T14:06:40+03:00".to_vec(),
        b"55.751244".to_vec(),
        b"-37.6184231e-3".to_vec(),
    ];
    let targets: [(&str, &str, Vec<Vec<u8>>); 7] = [
        ("envelope", "envelope", veche_fuzz::seed_envelopes()),
        ("envelope", "payload", payloads),
        ("envelope", "field", fields),
        ("entry", "entry", veche_fuzz::seed_entries()),
        ("tiles", "tile", veche_fuzz::seed_tiles()),
        (
            "notes_and_proofs",
            "note",
            veche_fuzz::seed_notes_and_proofs(),
        ),
        ("verify_strict", "signature", veche_fuzz::seed_signatures()),
    ];
    for (target, stem, inputs) in targets {
        let folder = seeds.join(target);
        fs::create_dir_all(&folder)?;
        for (number, input) in inputs.iter().enumerate() {
            let path = folder.join(format!("{stem}-{number}"));
            fs::write(&path, input)?;
            println!("{} ({} bytes)", path.display(), input.len());
        }
    }
    Ok(())
}
