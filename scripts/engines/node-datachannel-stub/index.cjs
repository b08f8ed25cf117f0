'use strict'
// WebRTC is not installed: the interop tests use TCP peers only.  Constructing any of
// these throws, so a WebRTC path fails loudly instead of silently doing nothing.
class Unavailable {
  constructor () {
    throw new Error('WebRTC (node-datachannel) is stubbed out in this install; TCP peers only')
  }
}
module.exports = {
  PeerConnection: Unavailable,
  RtcpReceivingSession: Unavailable,
  Video: Unavailable,
  Audio: Unavailable,
  cleanup () {}
}
