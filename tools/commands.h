/* The subcommands of `ocellus`, each `int cmd_NAME(int argc, char **argv)` with argv[0]
 * the subcommand name; they return the process exit code. */
#ifndef OC_COMMANDS_H
#define OC_COMMANDS_H
int cmd_caption(int argc, char **argv);
int cmd_ask(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_make_model(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_train_tokenizer(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* serving */
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);
/* scaling laws (issue 13) */
int cmd_scale(int argc, char **argv);
int cmd_plot(int argc, char **argv);
#endif
