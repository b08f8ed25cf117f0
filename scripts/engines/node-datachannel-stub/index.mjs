import stub from './index.cjs'

export const { PeerConnection, RtcpReceivingSession, Video, Audio, cleanup } = stub
export default stub
