"""The config schema: one frozen msgspec Struct per section, unknown keys rejected.

Owns: every key a component reads, its type, bounds and default, with the docstring
docs/configuration.md mirrors. Does not own: loading the layers (faced.config.layers) or the
rules a type cannot express (faced.config.validation). Why apart: the schema is what a
newcomer reads to learn what can be set; it stays free of I/O.
Its annotations are evaluated as the classes are made (no ``from __future__ import
annotations``): msgspec then reads the types as they are, where string annotations would be
compiled one by one (~140 of them) on every start-up that loads the config.
"""

from typing import Annotated, Literal

import msgspec
import msgspec.inspect
from msgspec import Meta

Port = Annotated[int, Meta(ge=1, le=65535)]

PositiveInt = Annotated[int, Meta(ge=1)]

PositiveFloat = Annotated[float, Meta(gt=0)]

NonNegativeFloat = Annotated[float, Meta(ge=0)]


class _Section(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Base of every config section: immutable, strict about unknown keys."""


class ServerConfig(_Section, frozen=True):
    host: str = "0.0.0.0"
    """Address to bind; 0.0.0.0 serves the whole LAN."""
    port: Port = 9999
    """TCP port of the HTTP/WebSocket API (env PORT)."""
    max_body_bytes: PositiveInt = 1024 * 1024
    """Largest request body accepted on JSON endpoints (413 beyond)."""
    trusted_proxies: list[str] = msgspec.field(default_factory=list)
    """Peers (IPs or CIDRs) whose X-Forwarded-For is believed for rate limiting."""
    cors_origin: str = "*"
    """Access-Control-Allow-Origin for the API, as Open Face sends it."""
    shutdown_timeout_s: PositiveFloat = 2.5
    """How long in-flight requests may take to finish on SIGTERM."""
    header_timeout_s: PositiveFloat = 10.0
    """A new connection that has not sent a complete request head by then is closed."""
    keepalive_timeout_s: PositiveFloat = 30.0
    """An idle kept-alive connection is closed after this; it also bounds the next head.
    Longer than aiohttp clients keep one (15 s): the client lets go first, no reuse race."""
    body_timeout_s: PositiveFloat = 10.0
    """Grace for a request body; after it the body must keep up body_min_bytes_per_s."""
    body_min_bytes_per_s: PositiveInt = 1024
    """Slowest body accepted after the grace: time allowed grows 1 s per this many bytes."""
    max_connections_per_client: PositiveInt = 32
    """Open connections one client (an IPv4 address, an IPv6 /64) may hold; more are closed
    at accept. 127.0.0.1, ::1 and trusted proxies are not capped."""
    max_connections: PositiveInt = 512
    """Open connections from all capped clients together (LimitNOFILE is sized for it)."""
    state_dir: str = ""
    """Where settings changed through the API persist (face pack, volume, config.json: the
    settings layer). Empty: $STATE_DIRECTORY,
    else ~/.local/state/faced."""


class AuthConfig(_Section, frozen=True):
    api_key: str | None = None
    """API key for writes and camera-derived data (env FACE_API_KEY). None: writes are open,
    camera data is served to loopback clients only."""


class LimitsConfig(_Section, frozen=True):
    max_viewers: PositiveInt = 50
    """Concurrent /ws/viewer and /api/events clients; more get 503 at upgrade. Up to 4
    (at most half) are kept for loopback clients, the appliance's own screen."""
    viewers_per_client: PositiveInt = 10
    """Viewer places one client off the box (an IPv4 address, an IPv6 /64) may hold;
    loopback clients are not capped by it."""
    max_agents: PositiveInt = 5
    """Concurrent /ws/agent clients; more get 503 at upgrade."""
    agent_messages_per_s: PositiveFloat = 60.0
    """Messages per second one agent socket may send; excess are dropped with an error."""
    agent_message_max_bytes: PositiveInt = 4096
    """Largest agent socket message; larger ones are refused with an error."""
    requests_per_s: PositiveFloat = 30.0
    """Sustained write requests per second per client address (GCRA); 429 beyond."""
    request_burst: PositiveInt = 60
    """Write requests a client may send at once before the rate applies."""
    audio_max_bytes: PositiveInt = 1024 * 1024
    """Largest raw audio chunk accepted by POST /api/audio (413 beyond)."""
    viewer_queue_messages: PositiveInt = 256
    """Messages buffered per viewer before it counts as too slow and is disconnected."""
    chat_max_chars: PositiveInt = 4000
    """Longest message POST /api/chat forwards (413 beyond)."""


class FaceConfig(_Section, frozen=True):
    idle_timeout_s: NonNegativeFloat = 30.0
    """No state update for this long returns the face to idle + neutral (0 disables)."""
    auto_sleep_s: NonNegativeFloat = 5.0
    """Seconds after the last agent disconnects before the face goes to sleep (0 disables)."""
    history_size: PositiveInt = 200
    """Entries kept in the /api/history ring buffer."""
    face: str = "default"
    """Face pack the viewers show (slug from /api/v1/presets)."""


class OpenClawConfig(_Section, frozen=True):
    gateway_url: str | None = None
    """Base URL of the OpenClaw gateway /api/chat forwards to (env OPENCLAW_GATEWAY_URL)."""
    gateway_token: str | None = None
    """Bearer token for the gateway (env OPENCLAW_GATEWAY_TOKEN)."""
    session_key: str = "agent:main"
    """Session the gateway routes chat messages to (env OPENCLAW_SESSION_KEY)."""
    timeout_s: PositiveFloat = 30.0
    """How long a chat request may take before it fails with 502."""


class CameraConfig(_Section, frozen=True):
    source: str = "none"
    """Camera source URI: none, demo, file:PATH, v4l2:/dev/videoN, picamera2, gstreamer:PIPELINE."""
    width: Annotated[int, Meta(ge=16, le=4096)] = 640
    """Requested frame width (v4l2, picamera2; demo renders at this size)."""
    height: Annotated[int, Meta(ge=16, le=4096)] = 480
    """Requested frame height."""
    fps: Annotated[float, Meta(gt=0, le=240)] = 30.0
    """Frames per second at most: requested from the camera, and a cap on what is used."""
    rotation: Literal[0, 90, 180, 270] = 0
    """Clockwise rotation applied to every frame, in degrees."""
    mirror: bool = False
    """Flip frames left-right (after rotation)."""
    tracking: bool = True
    """Run live face tracking on the camera's frames (needs the models)."""
    preview: bool = False
    """Serve GET /api/camera/preview.mjpg (key/loopback only) for aiming the camera."""
    snapshots: bool = False
    """Serve GET /api/camera/snapshot (key/loopback only): the current frame as one JPEG, for
    an agent (faced mcp's camera_snapshot). Off: the person did not sign up for pictures."""
    client_fps: Annotated[float, Meta(gt=0, le=240)] = 30.0
    """Most tracking results per second sent to one /ws/tracking client (?fps= lowers it)."""
    hfov_deg: Annotated[float, Meta(ge=10, le=170)] = 66.0
    """The camera's horizontal field of view in degrees, for distance_m (GET /api/person).
    The default is the Raspberry Pi Camera Module 3's (66°; its Wide model: 102°); take it
    from the camera's data sheet, for the image as captured (before rotation)."""


class FollowConfig(_Section, frozen=True):
    """Gaze follow and mirror (faced.face.follow): the face reacts to the tracked person."""

    mode: Literal["off", "follow", "mirror"] = "follow"
    """off; follow: the eyes look at the person (lookAt); mirror: follow, and the face copies
    the person's blinks, jaw, smile and brows. Needs live tracking (a camera); PUT
    /api/follow changes it until restart."""
    hold_s: Annotated[float, Meta(ge=0, le=3600)] = 5.0
    """After an agent sets lookAt or state (or a field mirror drives), the camera leaves
    those fields alone this long."""
    rate_hz: Annotated[float, Meta(gt=0, le=60)] = 20.0
    """Most face-state updates per second the camera causes."""


class PerceptionConfig(_Section, frozen=True):
    """What faced perceives of the person (faced.perception): attention, speech, expression."""

    head_yaw_deg: Annotated[float, Meta(gt=0, le=90)] = 30.0
    """Attention: the head may turn this far left or right of the screen's centre."""
    head_pitch_deg: Annotated[float, Meta(gt=0, le=90)] = 25.0
    """Attention: the head may tilt this far up or down of the screen's centre."""
    gaze_deg: Annotated[float, Meta(gt=0, le=90)] = 15.0
    """Attention: the eyes' direction (head turn plus the eyes in the head) within this
    many degrees of the screen's centre, either way."""
    camera_offset_x_m: Annotated[float, Meta(ge=-2, le=2)] = 0.0
    """Where the camera sits from the screen's centre, metres, to the right as the person
    faces the box (a camera left of the screen: negative)."""
    camera_offset_y_m: Annotated[float, Meta(ge=-2, le=2)] = 0.0
    """Where the camera sits from the screen's centre, metres, upward (a camera on top of a
    7" screen: about 0.06)."""
    attention_on_ms: Annotated[int, Meta(ge=0, le=10000)] = 300
    """Looking at the screen this long before attention starts."""
    attention_off_ms: Annotated[int, Meta(ge=0, le=10000)] = 500
    """Looking away this long before attention ends."""
    speaking_window_ms: Annotated[int, Meta(ge=200, le=5000)] = 1000
    """Speech: the window the mouth's opening and closing is counted over."""
    speaking_swings: Annotated[int, Meta(ge=2, le=50)] = 4
    """Speech: at least this many mouth swings (opening or closing by at least
    speaking_amplitude) within the window; a yawn or a smile makes one or two."""
    speaking_amplitude: Annotated[float, Meta(gt=0, le=1)] = 0.12
    """Speech: the least change of jawOpen (0..1) that counts as a swing."""
    speaking_off_ms: Annotated[int, Meta(ge=0, le=10000)] = 600
    """Speech: no speech-like motion this long before speaking ends."""
    expression_ms: Annotated[int, Meta(ge=0, le=10000)] = 300
    """An expression must hold this long before it replaces the one shown."""
    follow_on_attention: bool = False
    """Gaze follow (follow.mode follow or mirror) turns the face toward the person only
    while they attend (look at the screen); false: whenever someone is there."""


class VisionConfig(_Section, frozen=True):
    model_dir: str = ""
    """Directory holding the verified models. Empty: models/ in a checkout, else
    /var/lib/faced/models."""
    threads: PositiveInt = 1
    """Threads each inference interpreter may use."""
    backend: Literal["litert", "onnxruntime"] = "litert"
    """Inference back end: litert (LiteRT with XNNPACK) or onnxruntime (the `onnx` extra;
    CPU, or CUDA/TensorRT on an NVIDIA GPU, see onnx_provider)."""
    precision: Literal["fp32", "int8"] = "fp32"
    """fp32: the bundle's float models (ONNX: converted); int8: the quantized models
    `faced models build` derives."""
    onnx_provider: Literal["auto", "cpu", "cuda", "tensorrt"] = "auto"
    """ONNX Runtime execution provider: auto takes TensorRT, else CUDA, else the CPU,
    whichever this onnxruntime build has; cuda/tensorrt fail at startup when it has not."""
    tensorrt_cache_dir: str = ""
    """Where TensorRT keeps its built engines (a rebuild takes minutes). Empty:
    $XDG_CACHE_HOME/faced/tensorrt (~/.cache/faced/tensorrt)."""
    detector: Literal["short", "full", "auto"] = "short"
    """Face detector. short: MediaPipe's short-range BlazeFace (faces within ~2 m; what
    MediaPipe's Face Landmarker does). full: the full-range model on the whole frame (faces up
    to ~5 m; ~4x the cost of short per detection). auto: short while faces are near; when
    the expected face is small (a 16:9 or wider frame, the last face was small, or short
    range found nobody for 1 s) live tracking searches with full range, whole frame then
    256 px tiles, one view per frame, and finds faces down to ~25 px; one-off images get a
    full-range look when short finds nobody. Tracked frames need no detector either way."""
    num_faces: Annotated[int, Meta(ge=1, le=8)] = 1
    """Faces the pipeline looks for at most."""
    max_megapixels: PositiveFloat = 40.0
    """Images larger than this are refused before they are decoded."""
    analyze_workers: Annotated[int, Meta(ge=1, le=16)] = 1
    """Pipelines serving the analyze API (/v1/analyze, /v1/stream), each with its own
    models on its own thread: one per spare CPU core scales requests/s."""
    analyze_idle_unload_s: Annotated[float, Meta(ge=0)] = 300.0
    """A worker with no job and no stream for this long gives its models' memory back
    (~22 MiB each) and loads them again on its next job; 0 keeps them loaded."""
    analyze_shares_tracker_models: bool = True
    """With one analyze worker and live tracking running, the worker uses the tracker's
    loaded models (~19 MiB less) instead of loading its own set; each call still gets
    IMAGE-mode results (the same as with its own set) and the tracker keeps its state, the
    two take turns on the models (live tracking waits a few ms while an image runs). False:
    the worker always loads its own set. A bool, not auto/always: both sides read this
    same section, so back end, precision and model files always match, and with the camera
    off or several workers there is no set to share (the worker then loads its own)."""
    max_image_bytes: PositiveInt = 16 * 1024 * 1024
    """Largest encoded image the analyze API accepts (upload, base64 or stream frame)."""
    blendshapes: Literal["on_demand", "always"] = "on_demand"
    """Live tracking's blendshape model. on_demand: it runs only while something reads the
    scores (a /ws/tracking client that wants them, /api/emotion_state read in the last
    10 s, mirror mode, person events followed, MQTT, a calibration); always: every frame."""
    lid_drift_correction: bool = False
    """Correct MediaPipe's eyeLookDown drift on closing lids (faced.vision.lid_drift:
    eyeLookDownLeft/Right minus 1.3 x eyeBlink above the eye's rest) in live results (and
    so person events) and in jobs; /v1/analyze and `faced analyze` keep the model's scores.
    Off: a real look down lowers the lids too, and reads weaker with it on. Applied live
    (PATCH /api/system/config)."""


class DisplayConfig(_Section, frozen=True):
    """The attached display (faced.devices.display) and the policy that drives it
    (faced.display_policy)."""

    driver: Literal["auto", "sysfs", "wayland", "wlr-randr", "vcgencmd", "none"] = "auto"
    """auto: a backlight under backlight_dir, else wayland (a Wayland kiosk), else vcgencmd,
    else none. sysfs: brightness and bl_power of the backlight; wayland: power through the
    compositor's wlr-output-power-management; wlr-randr / vcgencmd: power through the tool
    (brightness through the backlight when there is one); none: no display, the state is
    only kept."""
    backlight_dir: str = "/sys/class/backlight"
    """Where backlight devices are (sysfs)."""
    backlight: str = ""
    """Backlight device name under backlight_dir; empty: the first one."""
    output: str = ""
    """Wayland output (e.g. HDMI-A-1) for wayland / wlr-randr; empty: every output."""
    wayland_display: str = ""
    """The compositor's socket for wayland / wlr-randr: a name under XDG_RUNTIME_DIR or an
    absolute path; empty: the inherited WAYLAND_DISPLAY, else the first wayland-N socket
    faced may open in /run/faced-kiosk (the kiosk's), then under /run/user/*."""
    tool_timeout_s: Annotated[float, Meta(gt=0, le=60)] = 5.0
    """How long the compositor, wlr-randr or vcgencmd may take before a call counts as
    failed."""
    brightness: Annotated[int, Meta(ge=0, le=100)] = 100
    """Brightness (percent) the policy turns the display on at."""
    dim_brightness: Annotated[int, Meta(ge=0, le=100)] = 20
    """Brightness (percent) when dimmed."""
    policy: bool = True
    """Let presence and agent activity drive the display; false: only PUT /api/display."""
    idle_dim_after_s: NonNegativeFloat = 120.0
    """Nobody seen and no agent activity for this long: dim (0 disables)."""
    idle_off_after_s: NonNegativeFloat = 600.0
    """Nobody seen and no agent activity for this long: off (0 disables)."""
    night: str = ""
    """Local-time window HH:MM-HH:MM (may cross midnight) in which the display is at most
    night_level; empty: no night schedule."""
    night_level: Literal["dim", "off"] = "off"
    """The most the display shows during the night window."""
    reapply_s: NonNegativeFloat = 60.0
    """While the policy is in charge, apply its level again this often even when it has not
    changed: something else may have changed the screen (a restarted kiosk compositor
    comes back with its output on). 0: only on changes."""


class TtsConfig(_Section, frozen=True):
    enabled: bool = True
    """Speak a speaking state's text with espeak-ng when no audio chunks come for it."""
    voice: Annotated[str, Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9_+./-]{0,63}$")] = "en-us"
    """espeak-ng voice (espeak-ng --voices lists them), e.g. en-us, en-gb+f3, de."""
    rate: Annotated[int, Meta(ge=80, le=450)] = 165
    """Words per minute."""
    pitch: Annotated[int, Meta(ge=0, le=99)] = 50
    """espeak-ng pitch, 0-99."""
    grace_s: Annotated[float, Meta(ge=0, le=10)] = 0.8
    """How long agent audio may take to start after the text before faced speaks it."""
    max_chars: Annotated[int, Meta(ge=1, le=5000)] = 1000
    """Longer text is cut at a word boundary before it is spoken."""


class AudioConfig(_Section, frozen=True):
    sink: str = "none"
    """Where faced plays audio: none (viewers play it), pyaudio[:DEVICE], wav:PATH."""
    rate: Annotated[int, Meta(ge=8000, le=192000)] = 48000
    """Device sample rate; chunks of other rates are resampled."""
    channels: Literal[1, 2] = 2
    """Device channels."""
    volume: Annotated[int, Meta(ge=0, le=100)] = 100
    """Volume until one is set through POST /api/audio/volume (then that one persists)."""
    max_queued_s: Annotated[float, Meta(gt=0, le=600)] = 60.0
    """Audio waiting to play at most; a chunk that does not fit gets 429."""
    tts: TtsConfig = msgspec.field(default_factory=TtsConfig)


class MdnsConfig(_Section, frozen=True):
    """The daemon's mDNS/DNS-SD announcement on the LAN (faced.discovery, extra ``mdns``)."""

    enabled: bool = True
    """Announce _faced._tcp and _http._tcp with python-zeroconf (where installed; without it
    one line is logged and the daemon runs on). A loopback server.host announces on the
    loopback interface only."""
    name: Annotated[str, Meta(pattern=r"^[^.\x00-\x1f]{0,63}$")] = ""
    """The instance name `faced discover` and browsers show; empty: "faced on <host name>".
    No dots, 63 characters at most; a name taken on the LAN gets a number appended."""
    host_records: Literal["auto", "faced", "system"] = "auto"
    """Who answers for <host name>.local (its address records). system: the OS's responder
    (avahi), faced announces only its services; faced: faced announces the addresses too;
    auto: system where avahi-daemon runs (/run/avahi-daemon/socket), else faced. Two
    responders must never announce the same records."""


class MqttConfig(_Section, frozen=True):
    """The link to an MQTT broker and Home Assistant's discovery (faced.mqtt)."""

    url: str = ""
    """Broker: mqtt://HOST[:PORT] (1883) or mqtts://HOST[:PORT] (TLS, 8883). Empty: no MQTT."""
    username: str | None = None
    """User name at the broker; None: anonymous."""
    password: str | None = None
    """Password at the broker (or the systemd credential mqtt-password)."""
    tls_ca_file: str = ""
    """CA certificates (PEM) that sign an mqtts broker's certificate; empty: the system's."""
    node_id: Annotated[str, Meta(pattern=r"^([A-Za-z0-9_-]{1,64})?$")] = ""
    """This box's id in topics and entity ids ([A-Za-z0-9_-]); empty: the host name,
    sanitised (lower case, other characters as _)."""
    base_topic: str = ""
    """Where this box's states and commands live; empty: faced/<node_id>."""
    group_topic: str = "faced/all"
    """Commands under <group_topic>/<entity>/set reach every box; empty: none."""
    discovery: bool = True
    """Announce the entities to Home Assistant (retained discovery configs)."""
    discovery_prefix: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_/-]{1,128}$")] = "homeassistant"
    """Home Assistant's discovery prefix."""
    name: str = ""
    """The device's name in Home Assistant; empty: faced <node_id>."""
    dashboard_url: str = ""
    """The device's configuration_url in Home Assistant; empty:
    http://<host name>.local:<port>/dashboard."""
    keepalive_s: Annotated[int, Meta(ge=5, le=3600)] = 30
    """MQTT keepalive: the broker sends the last will this long (x1.5) after the box falls
    silent."""
    min_interval_s: Annotated[float, Meta(ge=0, le=60)] = 1.0
    """Most one state publication round per this many seconds (changes in between are
    merged: the latest value is sent)."""
    poll_s: Annotated[float, Meta(gt=0, le=3600)] = 5.0
    """States nothing announces (volume, display, fps, health) are looked at this often."""


class LoggingConfig(_Section, frozen=True):
    level: Literal["debug", "info", "warning", "error"] = "info"
    """Lowest level written."""
    format: Literal["text", "json"] = "text"
    """text: one key=value line per event; json: one JSON object per line."""


class MetricsConfig(_Section, frozen=True):
    enabled: bool = True
    """Serve GET /metrics (Prometheus text format)."""
    public: bool = False
    """Serve /metrics to anyone: for a LAN scraper that cannot send the API key. Off: the
    key, or loopback only when none is set (the metrics include presence)."""


class JobsConfig(_Section, frozen=True):
    """Takes: videos turned into ARKit curves as queued jobs (faced.jobs)."""

    enabled: bool = True
    """Accept jobs (POST /api/v1/jobs) and run them, one at a time, below live tracking."""
    max_upload_bytes: PositiveInt = 512 * 1024 * 1024
    """Largest video one upload may send (413 beyond); it streams to disk, never to memory."""
    max_queued: PositiveInt = 16
    """Jobs waiting or running at once; more are refused with 429."""
    keep_days: NonNegativeFloat = 7.0
    """Finished jobs (and their files) are removed this long after they finished; 0 keeps
    them until max_bytes needs the room."""
    max_bytes: PositiveInt = 2 * 1024 * 1024 * 1024
    """The jobs' files together (curves, CSVs, kept videos): beyond it the oldest finished
    jobs are removed first."""
    nice: Annotated[int, Meta(ge=0, le=19)] = 10
    """How much lower than the daemon's the job process's CPU priority is (its nice value
    over the daemon's), so live tracking keeps its frame rate while a job runs."""


class Config(_Section, frozen=True):
    server: ServerConfig = msgspec.field(default_factory=ServerConfig)
    auth: AuthConfig = msgspec.field(default_factory=AuthConfig)
    limits: LimitsConfig = msgspec.field(default_factory=LimitsConfig)
    face: FaceConfig = msgspec.field(default_factory=FaceConfig)
    openclaw: OpenClawConfig = msgspec.field(default_factory=OpenClawConfig)
    camera: CameraConfig = msgspec.field(default_factory=CameraConfig)
    follow: FollowConfig = msgspec.field(default_factory=FollowConfig)
    perception: PerceptionConfig = msgspec.field(default_factory=PerceptionConfig)
    vision: VisionConfig = msgspec.field(default_factory=VisionConfig)
    display: DisplayConfig = msgspec.field(default_factory=DisplayConfig)
    audio: AudioConfig = msgspec.field(default_factory=AudioConfig)
    mdns: MdnsConfig = msgspec.field(default_factory=MdnsConfig)
    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    logging: LoggingConfig = msgspec.field(default_factory=LoggingConfig)
    metrics: MetricsConfig = msgspec.field(default_factory=MetricsConfig)
    jobs: JobsConfig = msgspec.field(default_factory=JobsConfig)
