/*
 * blobs.S - the plan image and the deployed input, linked into FRAM from
 * files: assemble with -DIH_PLAN_FILE='"plan.bin"' -DIH_INPUT_FILE='"input.bin"'.
 * The linker script puts .ih_plan and .ih_input at fixed FRAM addresses;
 * the input gets its 16-byte header here (ports/common/app.h). Without the
 * macros both sections stay empty.
 */
#ifdef IH_PLAN_FILE
    .section .ih_plan, "a"
    .balign 4
    .incbin IH_PLAN_FILE
#endif
#ifdef IH_INPUT_FILE
    .section .ih_input, "a"
    .balign 4
    .long 0x4E494849 /* "IHIN" */
    .long ih_input_data_end - ih_input_data
    .long 0
    .long 0
ih_input_data:
    .incbin IH_INPUT_FILE
ih_input_data_end:
#endif
