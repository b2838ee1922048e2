// Command pion-turnserver is a TURN server built from the pion/turn library, the
// second independent implementation the probe tests run against (coturn is the
// first). It follows pion's examples/turn-server/{simple,tcp,tls,lt-cred-turn-rest}
// in one process, with two differences the tests need: it listens on one address
// (loopback) instead of 0.0.0.0, and it reads users from a file as raw UTF-8,
// where the examples' -users flag only takes \w+ passwords (no no-break space).
package main

import (
	"bufio"
	"crypto/tls"
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/pion/logging"
	"github.com/pion/turn/v4"
)

func main() {
	listenIP := flag.String("listen-ip", "127.0.0.1", "address to listen on and to relay from")
	udpPort := flag.Int("udp-port", 3478, "UDP listening port")
	tcpPort := flag.Int("tcp-port", 0, "TCP listening port (0: none)")
	tlsPort := flag.Int("tls-port", 0, "TLS listening port (0: none)")
	certFile := flag.String("cert", "", "TLS certificate (PEM)")
	keyFile := flag.String("key", "", "TLS key (PEM)")
	realm := flag.String("realm", "pion.ly", "realm")
	usersFile := flag.String("users-file", "", "static users, one 'name=password' a line (raw UTF-8)")
	secretFile := flag.String("auth-secret-file", "", "shared secret of TURN REST credentials")
	flag.Parse()

	logger := logging.NewDefaultLoggerFactory().NewLogger("turn")
	var auth turn.AuthHandler
	switch {
	case *secretFile != "":
		secret, err := os.ReadFile(*secretFile)
		if err != nil {
			log.Fatalf("auth secret: %v", err)
		}
		auth = turn.LongTermTURNRESTAuthHandler(strings.TrimRight(string(secret), "\n"), logger)
	case *usersFile != "":
		keys := readUsers(*usersFile, *realm)
		auth = func(username, _ string, _ net.Addr) ([]byte, bool) {
			key, ok := keys[username]
			return key, ok
		}
	default:
		log.Fatalf("one of -users-file or -auth-secret-file is required")
	}

	relay := func() turn.RelayAddressGenerator {
		return &turn.RelayAddressGeneratorStatic{RelayAddress: net.ParseIP(*listenIP), Address: *listenIP}
	}
	config := turn.ServerConfig{Realm: *realm, AuthHandler: auth}
	udp, err := net.ListenPacket("udp4", net.JoinHostPort(*listenIP, strconv.Itoa(*udpPort)))
	if err != nil {
		log.Fatalf("udp listener: %v", err)
	}
	config.PacketConnConfigs = []turn.PacketConnConfig{{PacketConn: udp, RelayAddressGenerator: relay()}}
	if *tcpPort != 0 {
		tcp, err := net.Listen("tcp4", net.JoinHostPort(*listenIP, strconv.Itoa(*tcpPort)))
		if err != nil {
			log.Fatalf("tcp listener: %v", err)
		}
		config.ListenerConfigs = append(config.ListenerConfigs, turn.ListenerConfig{Listener: tcp, RelayAddressGenerator: relay()})
	}
	if *tlsPort != 0 {
		cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
		if err != nil {
			log.Fatalf("tls key pair: %v", err)
		}
		listener, err := tls.Listen("tcp4", net.JoinHostPort(*listenIP, strconv.Itoa(*tlsPort)),
			&tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
		if err != nil {
			log.Fatalf("tls listener: %v", err)
		}
		config.ListenerConfigs = append(config.ListenerConfigs, turn.ListenerConfig{Listener: listener, RelayAddressGenerator: relay()})
	}
	server, err := turn.NewServer(config)
	if err != nil {
		log.Fatalf("server: %v", err)
	}
	log.Printf("listening on %s (udp %d, tcp %d, tls %d)", *listenIP, *udpPort, *tcpPort, *tlsPort)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	if err := server.Close(); err != nil {
		log.Fatalf("close: %v", err)
	}
}

// readUsers keys each user as pion's examples do (turn.GenerateAuthKey), on the password's raw bytes.
func readUsers(path, realm string) map[string][]byte {
	file, err := os.Open(path)
	if err != nil {
		log.Fatalf("users file: %v", err)
	}
	defer file.Close()
	keys := map[string][]byte{}
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		name, password, found := strings.Cut(scanner.Text(), "=")
		if found && name != "" {
			keys[name] = turn.GenerateAuthKey(name, realm, password)
		}
	}
	if err := scanner.Err(); err != nil {
		log.Fatalf("users file: %v", err)
	}
	return keys
}
