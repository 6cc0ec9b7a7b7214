//! [`Shared`]: a protobuf message behind an `Arc`, so a batch kept for resending is sent
//! without a deep copy (tonic's codec takes its messages by value).

use std::sync::Arc;

use prost::bytes::{Buf, BufMut};
use prost::encoding::{DecodeContext, WireType};
use prost::DecodeError;

/// An `Arc`'d message that encodes exactly like the message itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shared<M>(pub Arc<M>);

impl<M: prost::Message + Clone> prost::Message for Shared<M> {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        self.0.encode_raw(buf)
    }
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        Arc::make_mut(&mut self.0).merge_field(tag, wire_type, buf, ctx)
    }
    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }
    fn clear(&mut self) {
        Arc::make_mut(&mut self.0).clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::proto as pb;
    use prost::Message;

    #[test]
    fn encodes_like_the_inner_message() {
        let m = pb::EventBatch {
            sequence: 7,
            events: vec![pb::Event {
                id: "x".into(),
                ..Default::default()
            }],
        };
        let shared = Shared(Arc::new(m.clone()));
        assert_eq!(shared.encode_to_vec(), m.encode_to_vec());
        let back = Shared::<pb::EventBatch>::decode(&*m.encode_to_vec()).unwrap();
        assert_eq!(*back.0, m);
    }
}
