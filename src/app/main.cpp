// normgpt: the command line. Parses flags and hands off to one subcommand; every UserError ends
// here as one line on stderr and exit code 2.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "app/commands.hpp"
#if NORMGPT_HAVE_CUDA_BACKEND
#include "backend/cuda/cuda_backend.hpp"
#endif
#include "core/errors.hpp"
#include "dist/communicator.hpp"
#include "data/tokenize_cmd.hpp"
#include "train/trainer.hpp"

namespace {

// Prints the one-line message and, in a multi-rank job, ends the other ranks too: they would
// otherwise wait forever in their next collective.
int fail(int code, const char* prefix, const char* what) {
  std::fprintf(stderr, "normgpt: %s%s\n", prefix, what);
  std::fflush(stderr);
  ng::abort_all_ranks(code);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
#if NORMGPT_HAVE_CUDA_BACKEND
  ng::register_cuda_backend();
#endif
  CLI::App app{"normgpt: GPT pretraining with a choice of normalization strategy"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "help for every subcommand");

  ng::TrainOptions train;
  auto* train_cmd = app.add_subcommand("train", "train a model (writes a run directory)");
  train_cmd->add_option("-c,--config", train.config_path, "config JSON")->required();
  train_cmd->add_option("-o,--out", train.run_dir, "run directory (default runs/<config>-<date>-<time>)");
  train_cmd->add_option("--set", train.overrides, "override a config key: key.path=value (repeatable)");
  train_cmd->add_flag("--resume", train.resume, "continue the run in -o from its latest checkpoint");
  train_cmd->add_option("--stop-after", train.stop_after, "stop after N steps of this invocation with a checkpoint")
      ->check(CLI::PositiveNumber);

  std::string eval_config, eval_checkpoint;
  std::vector<std::string> eval_overrides;
  auto* eval_cmd = app.add_subcommand("eval", "validation loss of a model file");
  eval_cmd->add_option("-c,--config", eval_config, "config JSON (data.val, eval.batches, B, T)")->required();
  eval_cmd->add_option("--checkpoint", eval_checkpoint, "model.bin")->required();
  eval_cmd->add_option("--set", eval_overrides, "override a config key");

  ng::SampleOptions sample;
  auto* sample_cmd = app.add_subcommand("sample", "generate text from a model file");
  sample_cmd->add_option("--checkpoint", sample.checkpoint, "model.bin")->required();
  sample_cmd->add_option("--prompt", sample.prompt, "text to continue");
  sample_cmd->add_option("-n,--tokens", sample.tokens, "tokens to generate");
  sample_cmd->add_option("--temperature", sample.temperature, "softmax temperature");
  sample_cmd->add_option("--seed", sample.seed, "sampling seed");

  ng::TokenizeOptions tok;
  auto* tok_cmd = app.add_subcommand("tokenize", "text files -> llm.c token shards");
  tok_cmd->add_option("--input", tok.inputs, "text files, one document each")->required();
  tok_cmd->add_option("--output-dir", tok.output_dir, "directory for train_*.bin, val_*.bin")->required();
  tok_cmd->add_option("--tokenizer", tok.tokenizer, "gpt2 | byte");
  tok_cmd->add_option("--val-fraction", tok.val_fraction, "fraction of tokens for validation");
  tok_cmd->add_option("--vocab-dir", tok.vocab_dir, "directory with encoder.json, vocab.bpe");

  std::string info_config;
  std::vector<std::string> info_overrides;
  auto* info_cmd = app.add_subcommand("info", "resolved config, parameters, FLOPs and memory");
  info_cmd->add_option("-c,--config", info_config, "config JSON")->required();
  info_cmd->add_option("--set", info_overrides, "override a config key");

  if (argc > 1 && argv[1][0] != '-') {
    bool known = false;
    for (const auto* sub : app.get_subcommands({})) known = known || sub->get_name() == argv[1];
    if (!known) {
      std::fprintf(stderr, "normgpt: error: unknown subcommand '%s' (expected train, eval, sample, tokenize, info)\n",
                   argv[1]);
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "normgpt: error: %s (see normgpt --help)\n", e.what());
    return 2;
  }

  try {
    if (*train_cmd) {
      const int code = ng::run_train(train);
      ng::finalize_communicator();
      return code;
    }
    if (*eval_cmd) ng::run_eval(eval_config, eval_overrides, eval_checkpoint);
    if (*sample_cmd) ng::run_sample(sample);
    if (*tok_cmd) ng::run_tokenize(tok);
    if (*info_cmd) ng::run_info(info_config, info_overrides);
    return 0;
  } catch (const ng::UserError& e) {
    return fail(2, "error: ", e.what());
  } catch (const ng::InternalError& e) {
    return fail(1, "", e.what());
  } catch (const std::bad_alloc&) {
    return fail(2, "error: ", "out of memory (try a smaller train.batch_size or model)");
  } catch (const std::exception& e) {
    return fail(1, "error: ", e.what());
  }
}
