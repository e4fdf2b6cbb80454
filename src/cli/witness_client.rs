//! The transport `checkpoint --witness` posts through: `POST {url}/add-checkpoint`.

use crate::checkpoint::WitnessReply;

/// Posts an add-checkpoint body to the witness at submission prefix `url`.
pub async fn post_add_checkpoint(url: &str, body: String) -> WitnessReply {
    let _ = body;
    WitnessReply::Down(format!("{url}: no HTTP client in this build yet"))
}
