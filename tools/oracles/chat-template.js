// Renders chat templates with @huggingface/jinja (the Jinja implementation of
// transformers.js), as the oracle for tokenizer/chat.
//
//   node chat-template.js CONVERSATIONS.json OUT.json CONFIG.json...
//
// Each tokenizer_config.json's chat_template (a string, or a list of named templates
// of which "default" is taken) is rendered for every conversation with
// add_generation_prompt false and true, with the variables transformers'
// apply_chat_template passes: the special tokens of the config (strings or
// AddedToken objects), tools and documents = null, and the library's own
// raise_exception and strftime_now (the clock fixed at 26 Jul 2024 00:00 UTC). A
// template that throws gives {"error": message}.
"use strict";
const fs = require("fs");
const { Template } = require("@huggingface/jinja");

const SPECIAL = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];
const NOW = new Date(Date.UTC(2024, 6, 26, 0, 0, 0));
// @huggingface/jinja's strftime_now (a global that the render variables cannot
// replace) formats `new Date()` in local time: fix the clock and the zone.
process.env.TZ = "UTC";
const RealDate = Date;
global.Date = class extends RealDate {
	constructor(...args) {
		super(...(args.length ? args : [NOW.getTime()]));
	}
	static now() {
		return NOW.getTime();
	}
};

function tokenText(v) {
	return typeof v === "string" ? v : v.content;
}

function pick(ct) {
	if (typeof ct === "string") return ct;
	const t = ct.find((x) => x.name === "default");
	if (!t) throw new Error("no default template");
	return t.template;
}

const [convFile, outFile, ...configs] = process.argv.slice(2);
const conversations = JSON.parse(fs.readFileSync(convFile, "utf8"));
const out = {};
for (const file of configs) {
	const cfg = JSON.parse(fs.readFileSync(file, "utf8"));
	const template = new Template(pick(cfg.chat_template));
	const vars = { tools: null, documents: null };
	for (const k of SPECIAL) {
		if (cfg[k] !== undefined && cfg[k] !== null) vars[k] = tokenText(cfg[k]);
	}
	if (Array.isArray(cfg.additional_special_tokens)) vars.additional_special_tokens = cfg.additional_special_tokens.map(tokenText);
	const rows = [];
	for (const conv of conversations) {
		for (const agp of [false, true]) {
			const ctx = { ...vars, messages: conv.messages, add_generation_prompt: agp };
			try {
				rows.push({ name: conv.name, add_generation_prompt: agp, text: template.render(ctx) });
			} catch (e) {
				rows.push({ name: conv.name, add_generation_prompt: agp, error: e.message });
			}
		}
	}
	out[file] = rows;
}
fs.writeFileSync(outFile, JSON.stringify(out));
