import RecurZMQ
import Testing

/// The Swift layer over libzmq: messages keep their frames, errors carry the call and errno,
/// and CURVE keys round-trip through Z85.
@Suite struct ZMQTests {
    @Test func multipartMessagesKeepTheirFramesOverInproc() throws {
        let context = try Context()
        let a = try Socket(context, .pair)
        let b = try Socket(context, .pair)
        try a.bind("inproc://zmq-tests-pair")
        try b.connect("inproc://zmq-tests-pair")
        #expect(try b.receive(wait: false) == nil)
        #expect(try poll([.socket(b)], timeoutMilliseconds: 0) == [false])
        let frames: [[UInt8]] = [Array("header".utf8), [], [0, 1, 2, 255]]
        try a.send(frames)
        #expect(try poll([.socket(b)], timeoutMilliseconds: 5000) == [true])
        #expect(try b.receive() == frames)
    }

    @Test func failedCallsNameTheCallAndErrno() throws {
        let context = try Context()
        let socket = try Socket(context, .router)
        let error = try #require(throws: ZMQError.self) { try socket.bind("nonsense://endpoint") }
        #expect(error.call.hasPrefix("zmq_bind"))
        #expect(error.errno != 0)
        #expect(!error.message.isEmpty)
    }

    @Test func curveKeysRoundTripThroughZ85() throws {
        let first = try CurveKeyPair.generate()
        let second = try CurveKeyPair.generate()
        #expect(first.publicKey.count == 40 && first.secretKey.count == 40)
        #expect(first.publicKey != second.publicKey && first.secretKey != first.publicKey)
        let bytes = try #require(decodeZ85Key(first.publicKey))
        #expect(bytes.count == 32)
        #expect(encodeZ85Key(bytes) == first.publicKey)
        #expect(decodeZ85Key(String(first.publicKey.dropLast())) == nil)
        #expect(decodeZ85Key(String(repeating: "~", count: 40)) == nil)  // "~" is not a Z85 digit
        #expect(encodeZ85Key([1, 2, 3]) == nil)
    }
}
