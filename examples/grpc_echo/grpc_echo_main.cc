// outrigger-grpc-echo: a gRPC server and client (gRPC C++ from Debian) for tests of the mesh.
//   outrigger-grpc-echo serve --listen 127.0.0.1:0 --name NAME [--unary-status CODE]
//       prints "listening name=grpc address=IP:PORT" on stderr, serves Echo until SIGTERM.
//       With --unary-status (a gRPC code number, e.g. 14 UNAVAILABLE), every Unary call fails
//       with that code, trailers-only (no message): a broken replica for retry tests.
//   outrigger-grpc-echo call --target IP:PORT [--authority AUTH] [--messages N] [--bytes B]
//       a Unary call, a Chat of N messages (B payload bytes each, both ways at once), and a Fail
//       call expecting NOT_FOUND; prints one JSON line with what came back (statuses, trailing
//       metadata, counts) and exits 0 only when everything matched.
//   outrigger-grpc-echo call --target IP:PORT [--authority AUTH] --unary N
//       N Unary calls only, one after another; prints {"ok":K,"codes":{"CODE":COUNT,...},
//       "servers":{"NAME":COUNT,...}} and exits 0.
#include <grpcpp/grpcpp.h>

#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "echo.grpc.pb.h"

namespace {

using outrigger::grpcecho::Echo;
using outrigger::grpcecho::Message;

std::string Arg(int argc, char** argv, const std::string& name, const std::string& fallback) {
  for (int i = 2; i + 1 < argc; ++i) {
    if (argv[i] == "--" + name) return argv[i + 1];
  }
  return fallback;
}

class Service final : public Echo::Service {
 public:
  Service(std::string name, int unary_status)
      : name_(std::move(name)), unary_status_(unary_status) {}

  grpc::Status Unary(grpc::ServerContext* ctx, const Message* in, Message* out) override {
    if (unary_status_ != 0) {
      return grpc::Status(static_cast<grpc::StatusCode>(unary_status_), name_ + " is broken");
    }
    out->set_text(name_ + ": " + in->text());
    out->set_payload(in->payload());
    ctx->AddTrailingMetadata("x-echo-trailer", "unary-" + name_);
    return grpc::Status::OK;
  }

  grpc::Status Chat(grpc::ServerContext* ctx,
                    grpc::ServerReaderWriter<Message, Message>* stream) override {
    Message m;
    int n = 0;
    while (stream->Read(&m)) {
      m.set_text(name_ + ": " + m.text());
      if (!stream->Write(m)) break;
      ++n;
    }
    ctx->AddTrailingMetadata("x-echo-count", std::to_string(n));
    return grpc::Status::OK;
  }

  grpc::Status Fail(grpc::ServerContext*, const Message* in,
                    grpc::ServerWriter<Message>* writer) override {
    Message m;
    m.set_text("before the error");
    writer->Write(m);
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such thing: " + in->text());
  }

 private:
  std::string name_;
  int unary_status_ = 0;
};

std::string Trailer(const grpc::ClientContext& ctx, const std::string& key) {
  const auto& md = ctx.GetServerTrailingMetadata();
  auto it = md.find(key);
  return it == md.end() ? "" : std::string(it->second.data(), it->second.size());
}

// N Unary calls: how many succeeded, the codes, and which servers answered.
int CallUnary(Echo::Stub& stub, int n) {
  std::map<int, int> codes;
  std::map<std::string, int> servers;
  int ok = 0;
  for (int i = 0; i < n; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    Message req, resp;
    req.set_text("hello");
    const grpc::Status st = stub.Unary(&ctx, req, &resp);
    ++codes[st.error_code()];
    if (st.ok()) {
      ++ok;
      ++servers[resp.text().substr(0, resp.text().find(':'))];
    }
  }
  std::cout << "{\"ok\":" << ok << ",\"codes\":{";
  const char* sep = "";
  for (const auto& [code, count] : codes) {
    std::cout << sep << "\"" << code << "\":" << count;
    sep = ",";
  }
  std::cout << "},\"servers\":{";
  sep = "";
  for (const auto& [name, count] : servers) {
    std::cout << sep << "\"" << name << "\":" << count;
    sep = ",";
  }
  std::cout << "}}" << std::endl;
  return 0;
}

int Call(int argc, char** argv) {
  const std::string target = Arg(argc, argv, "target", "");
  const std::string authority = Arg(argc, argv, "authority", "");
  const int unary = std::atoi(Arg(argc, argv, "unary", "0").c_str());
  const int messages = std::atoi(Arg(argc, argv, "messages", "10").c_str());
  const int bytes = std::atoi(Arg(argc, argv, "bytes", "100").c_str());
  grpc::ChannelArguments args;
  if (!authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, authority);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  auto stub = Echo::NewStub(channel);
  if (unary > 0) return CallUnary(*stub, unary);
  bool ok = true;

  grpc::ClientContext uctx;
  uctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  Message req, resp;
  req.set_text("hello");
  const grpc::Status us = stub->Unary(&uctx, req, &resp);
  ok = ok && us.ok() && resp.text().find("hello") != std::string::npos;

  grpc::ClientContext cctx;
  cctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto chat = stub->Chat(&cctx);
  const std::string payload(bytes, 'p');
  std::thread writer([&] {
    for (int i = 0; i < messages; ++i) {
      Message m;
      m.set_text("m" + std::to_string(i));
      m.set_payload(payload);
      if (!chat->Write(m)) break;
    }
    chat->WritesDone();
  });
  int echoed = 0;
  Message in;
  while (chat->Read(&in)) {
    if (in.text() == "" || in.payload().size() != payload.size()) ok = false;
    ++echoed;
  }
  writer.join();
  const grpc::Status cs = chat->Finish();
  ok = ok && cs.ok() && echoed == messages && Trailer(cctx, "x-echo-count") ==
                                                  std::to_string(messages);

  grpc::ClientContext fctx;
  fctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  Message freq;
  freq.set_text("widget");
  auto fail = stub->Fail(&fctx, freq);
  int before = 0;
  while (fail->Read(&in)) ++before;
  const grpc::Status fs = fail->Finish();
  ok = ok && fs.error_code() == grpc::StatusCode::NOT_FOUND && before == 1;

  std::cout << "{\"ok\":" << (ok ? "true" : "false") << ",\"unary_status\":" << us.error_code()
            << ",\"unary_text\":\"" << resp.text() << "\",\"unary_trailer\":\""
            << Trailer(uctx, "x-echo-trailer") << "\",\"chat_status\":" << cs.error_code()
            << ",\"chat_echoed\":" << echoed << ",\"chat_trailer_count\":\""
            << Trailer(cctx, "x-echo-count") << "\",\"fail_status\":" << fs.error_code()
            << ",\"fail_message\":\"" << fs.error_message() << "\",\"fail_messages\":" << before
            << "}" << std::endl;
  return ok ? 0 : 1;
}

int Serve(int argc, char** argv) {
  const std::string listen = Arg(argc, argv, "listen", "127.0.0.1:0");
  Service service(Arg(argc, argv, "name", "grpc-echo"),
                  std::atoi(Arg(argc, argv, "unary-status", "0").c_str()));
  // SIGTERM/SIGINT are taken by sigwait below (blocked first, so gRPC's threads never get them).
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "outrigger-grpc-echo: cannot listen on " << listen << std::endl;
    return 1;
  }
  const std::string host = listen.substr(0, listen.rfind(':'));
  std::cerr << "listening name=grpc address=" << host << ":" << port << std::endl;
  int sig = 0;
  sigwait(&stop, &sig);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "serve") return Serve(argc, argv);
  if (mode == "call") return Call(argc, argv);
  std::cerr << "usage: outrigger-grpc-echo serve --listen IP:PORT [--name NAME]"
               " [--unary-status CODE]\n"
               "       outrigger-grpc-echo call --target IP:PORT [--authority A] [--messages N]"
               " [--bytes B] [--unary N]\n";
  return 2;
}
