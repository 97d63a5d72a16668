// No WebRTC here: webtorrent reaches WebRTC peers only through trackers,
// which the interop test turns off. Anything that tries fails loudly.
class Unavailable {
  constructor () { throw new Error('WebRTC is stubbed out in this test') }
}
export const RTCPeerConnection = Unavailable
export const RTCSessionDescription = Unavailable
export const RTCIceCandidate = Unavailable
export default { RTCPeerConnection, RTCSessionDescription, RTCIceCandidate }
